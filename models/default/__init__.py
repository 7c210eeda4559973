"""The shipped default model folder (model.npz + predictor.json + model.json), installed as ``cxnlp.default_model``."""
