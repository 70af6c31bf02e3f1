"""The guarded shell: a prompt_toolkit front end over a persistent bash child."""
