"""Task kinds of bundle jobs run locally: notebooks, wheels, scripts, pipelines, conditions."""
