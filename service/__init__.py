"""The cxnlp HTTP service: a thin FastAPI door into the cxnlp library."""
