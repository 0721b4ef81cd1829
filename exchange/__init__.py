"""Puente hub: the I/O shell around the pure ``schemas``, ``consent`` and ``audit`` packages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the hub: defaults, instance file, ``PUENTE_*`` environment, then ``test_config``."""
    # Imported here so that importing ``exchange`` (the command line) loads neither Flask nor
    # the schemas: ``puente audit verify`` needs only the ``audit`` package and click.
    from flask import Flask

    from exchange.config import (
        DEFAULTS,
        INSTANCE_CONFIG_FILE,
        SettingError,
        check_settings,
        default_database_url,
        environment_setting_names,
        instance_path_from_env,
        unknown_settings,
    )

    instance_path = instance_path_from_env()
    if test_config and "INSTANCE_PATH" in test_config:
        instance_path = test_config["INSTANCE_PATH"]
    app = Flask(__name__, instance_path=str(instance_path), instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    known_before_file = set(app.config)  # Flask's own settings and Puente's
    try:
        app.config.from_pyfile(INSTANCE_CONFIG_FILE, silent=True)
    except Exception as error:  # any fault of the file is the operator's to fix
        # The file is Python (KEY = "value" lines): a typo raises whatever Python raises.
        where = f"{app.instance_path}/{INSTANCE_CONFIG_FILE}"
        cause = f"{type(error).__name__}: {error}"
        raise SettingError(
            f"El archivo de configuración {where} no se puede leer ({cause}); corríjalo: cada "
            'línea es NOMBRE = "valor".',
            f"The configuration file {where} cannot be read ({cause}); fix it: each line is "
            'NAME = "value".',
        ) from error
    unknown = unknown_settings(
        [*(set(app.config) - known_before_file), *environment_setting_names()],
        known_elsewhere=known_before_file,
    )
    app.config.from_prefixed_env("PUENTE")
    if test_config:
        app.config.from_mapping(test_config)
    check_settings(app.config)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = default_database_url(instance_path)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    from exchange import (
        crypto,
        db,
        httpbasics,
        keys,
        logs,
        oauth,
        observability,
        openapi,
        portal,
        ratelimit,
    )
    from exchange.api import (
        audit,
        children,
        consents,
        discovery,
        federation,
        record_reads,
        records,
        schemas,
        sharing,
        witness,
    )
    from exchange.disclosure import check_rules_file

    check_rules_file(app)  # a hub whose own rules cannot be read does not start
    logs.init_app(app)
    if unknown:
        logs.warn_unknown_settings(unknown)
    httpbasics.init_app(app)
    crypto.init_app(app)
    db.init_app(app)
    keys.init_app(app)
    observability.init_app(app)
    openapi.init_app(app)
    ratelimit.init_app(app)
    oauth.init_app(app)
    portal.init_app(app)  # the portal's session cookie and its secret
    for area in (
        discovery,
        schemas,
        records,
        record_reads,
        children,
        sharing,
        consents,
        audit,
        witness,
        federation,
        portal,
    ):
        app.register_blueprint(area.bp)
    return app
