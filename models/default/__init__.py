"""The shipped default model folder (model.joblib + model.json), installed as ``cxnlp.default_model``."""
