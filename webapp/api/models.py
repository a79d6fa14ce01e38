"""Model registry API."""

from __future__ import annotations

from flask import g
from flask.typing import ResponseReturnValue

from feedback import permissions
from feedback.accounts import services as accounts
from feedback.catalog import queries as catalog_queries
from feedback.catalog import services as catalog
from feedback.permissions import Action
from feedback.schemas import ErrorOut, ModelIn, ModelListOut, ModelOut, ModelOwnersIn, ModelOwnersOut, ModelVersionIn
from feedback.validation import parse
from webapp.api.blueprint import bp, json_body
from webapp.api.openapi import documented
from webapp.api.serialize import model_out
from webapp.extensions import db


@bp.get("/models")
@documented("get", "/api/v1/models", "List models with their versions", responses={200: ("the models", ModelListOut)})
def list_models() -> ResponseReturnValue:
    """Every registered model."""
    return {"items": [model_out(m) for m in catalog_queries.models_with_versions(db.session)]}


@bp.post("/models")
@documented(
    "post",
    "/api/v1/models",
    "Register a model with its actions and reason codes",
    body=ModelIn,
    responses={
        201: ("registered", ModelOut),
        403: ("role may not register models", ErrorOut),
        409: ("key already registered (`conflict`), or a reason code repeated (`repeated_in_request`)", ErrorOut),
        422: ("invalid fields", ErrorOut),
    },
)
def create_model() -> ResponseReturnValue:
    """Register a model."""
    permissions.require(g.user, Action.REGISTER_MODELS)
    spec = parse(ModelIn, json_body())
    model = catalog.register_model(db.session, accounts.actor_of(g.user), spec=spec)
    return model_out(catalog.get_model(db.session, model.key)), 201


@bp.post("/models/<key>/versions")
@documented(
    "post",
    "/api/v1/models/{key}/versions",
    "Register a version of a model",
    body=ModelVersionIn,
    path_params={"key": "key"},
    responses={
        201: ("registered", ModelOut),
        403: ("role may not register versions", ErrorOut),
        404: ("unknown model", ErrorOut),
        409: ("version already registered", ErrorOut),
        422: ("invalid fields", ErrorOut),
    },
)
def create_version(key: str) -> ResponseReturnValue:
    """Register a model version; answers the model with all its versions."""
    permissions.require(g.user, Action.CHANGE_MODEL)
    spec = parse(ModelVersionIn, json_body())
    catalog.add_model_version(db.session, accounts.actor_of(g.user), model_key=key, spec=spec)
    db.session.expire_all()
    return model_out(catalog.get_model(db.session, key)), 201


@bp.put("/models/<key>/owners")
@documented(
    "put",
    "/api/v1/models/{key}/owners",
    "Replace a model's owners (admins only; audited). Only its owners and admins may change a model.",
    body=ModelOwnersIn,
    path_params={"key": "key"},
    responses={
        200: ("the model's owners now", ModelOwnersOut),
        403: ("only admins assign owners", ErrorOut),
        404: ("unknown model", ErrorOut),
        409: ("an owner who is not an active model owner, or no user at all (`not_allowed`)", ErrorOut),
        422: ("invalid fields", ErrorOut),
    },
)
def set_model_owners(key: str) -> ResponseReturnValue:
    """Replace a model's owners."""
    permissions.require(g.user, Action.ADMINISTER)  # before reading the body
    spec = parse(ModelOwnersIn, json_body())
    owners = catalog.set_model_owners(db.session, g.user, model_key=key, owner_emails=spec.owners)
    return ModelOwnersOut(model=key, owners=[o.email for o in owners]).model_dump(mode="json")
