"""A sweep on a Ray cluster: submitting and following it as a Ray job (``submit``) and SageMaker
managed MLflow specifics (``sagemaker``).
"""
