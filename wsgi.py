"""The web application for gunicorn and ``flask --app wsgi``."""

import gc

from app import create_app

app = create_app()
# Everything loaded so far lives as long as the process: keep it out of the
# garbage collector's full passes, which otherwise pause heavy pages.
gc.freeze()
