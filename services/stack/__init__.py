"""The whole stack in one command: `hyp up` (local processes) and docker-compose.yml, from one definition."""
