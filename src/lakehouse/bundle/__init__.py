"""Bundle jobs: task context, the local DAG runner and the spark-submit entry point."""
