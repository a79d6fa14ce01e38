"""Extensions, created unbound and attached in create_app."""

from flask_sqlalchemy_lite import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

db = SQLAlchemy(session_options={"expire_on_commit": False})
csrf = CSRFProtect()
