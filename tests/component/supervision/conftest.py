"""The console's database, app and logged-in clients, for the live calls page's tests."""

from tests.component.console.conftest import (  # noqa: F401 - fixtures, used by name
    client_as,
    console_app,
    console_context,
    console_db_url,
)
