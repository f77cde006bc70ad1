"""The one lead builder: every new lead (web post, hosted form, re-processed inbox row,
CSV import) is built here, in batches, by the worker."""
