"""A plain PySpark task: prints its arguments."""

import sys

print("hello", *sys.argv[1:])
