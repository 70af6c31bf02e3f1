"""Make the login-shell fixtures (defined in login_fixtures.py) visible to this folder's tests."""

from __future__ import annotations

from login_fixtures import login_shell, login_user, sshd, tmux

__all__ = ["login_shell", "login_user", "sshd", "tmux"]
