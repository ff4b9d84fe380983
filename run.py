"""Entry point: `flask --app run ...` and WSGI servers (gunicorn run:app)."""
from app import create_app

app = create_app()
