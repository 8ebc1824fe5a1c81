"""Model training, evaluation and registration in MLflow."""
