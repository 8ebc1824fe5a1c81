"""A tiny package for python_wheel_task tests."""
