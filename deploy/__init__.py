"""The vitdeploy command line, sweep orchestration, configuration and reporting."""
