"""People: quick add, the person page with its history, and merging two records."""
