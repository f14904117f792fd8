"""One module per ``mailinfra-agent`` command (see ``mailinfra_agent.cli``)."""
