"""Search everything: one box in the header, each role inside its walls."""
