"""Settings, read from the environment (see README "Configuration")."""

import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import dj_database_url
from celery.schedules import crontab

from .env import SettingsError, env, envbool, envdecimal, envfloat, envint, envlist

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("DEBUG", True)


def _development_secret_key() -> str:
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise SettingsError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = (env("SITE_URL", "http://127.0.0.1:8000") or "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "guardian",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "workspaces",
    "routing",
    "billing",
]

MIDDLEWARE = [
    "openrouter_ws.middleware.refuse_nul",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "openrouter_ws.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "openrouter_ws.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workspaces.context_processors.navigation",
            ],
        },
    },
]

# Database: DATABASE_URL, or SQLite under var/ for development.
DATABASE_URL = env("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("CONN_MAX_AGE", 60))}
except Exception as exc:  # dj_database_url raises several types for a malformed URL
    raise SettingsError(f"DATABASE_URL is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several server processes share one SQLite file: wait for locks instead of failing,
    # take the write lock up front, and let readers run beside the writer.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: optional. Cache, cross-process counters and (unless overridden) the Celery broker.
REDIS_URL = env("REDIS_URL") or ""
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Files under var/, shared by every server process on the machine: per-process memory would let each
    # process count login failures (allauth's rate limits) on its own.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

# Celery. With no broker configured, an embedded filesystem broker under var/ (no server needed).
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    _processed_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"
# Activity rollups (billing.rollups): every ROLLUP_INTERVAL_SECONDS, up to ROLLUP_LAG_SECONDS ago (generation
# rows land a moment after their timestamp); yesterday is rebuilt whole once a night.
ROLLUP_INTERVAL_SECONDS = envint("ROLLUP_INTERVAL_SECONDS", 60, minimum=1)
ROLLUP_LAG_SECONDS = envint("ROLLUP_LAG_SECONDS", 60, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "roll-up-activity": {"task": "billing.tasks.roll_up_activity", "schedule": float(ROLLUP_INTERVAL_SECONDS),
                         # A run that waited longer than the interval is superseded by the next one.
                         "options": {"expires": float(ROLLUP_INTERVAL_SECONDS)}},
    "re-roll-yesterday": {"task": "billing.tasks.reroll_activity_day",
                          "schedule": crontab(hour=0, minute=20)},
}

AUTH_USER_MODEL = "workspaces.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"

# django-allauth
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[openrouter_ws] "
ACCOUNT_ADAPTER = "workspaces.adapter.AccountAdapter"
ANONYMOUS_USER_NAME = None  # django-guardian: no anonymous user row

# E-mail: EMAIL_URL (smtp://user:pass@host:port?tls=1, console://, file:///path), else files under var/mail/.
EMAIL_URL = env("EMAIL_URL") or ""
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "openrouter_ws <noreply@localhost>")


def _email_settings(url: str) -> dict:
    if not url:
        return {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(VAR_DIR / "mail")}
    parsed = urlparse(url)
    if parsed.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parsed.scheme == "file":
        return {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": unquote(parsed.path)}
    if parsed.scheme in ("smtp", "smtps"):
        query = parse_qs(parsed.query)
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parsed.hostname or "localhost",
            "EMAIL_PORT": parsed.port or (465 if parsed.scheme == "smtps" else 25),
            "EMAIL_HOST_USER": unquote(parsed.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parsed.password or ""),
            "EMAIL_USE_SSL": parsed.scheme == "smtps",
            "EMAIL_USE_TLS": query.get("tls", ["0"])[0] in ("1", "true"),
        }
    raise SettingsError(f"EMAIL_URL must start with smtp://, smtps://, console:// or file://, got {parsed.scheme}://")


globals().update(_email_settings(EMAIL_URL))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"  # `collectstatic` (serve runs it when DEBUG is off) fills it
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# Security headers. With DEBUG off cookies are secure; HTTPS redirect is left to the proxy in front
# unless SECURE_SSL_REDIRECT is set.
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 3600, minimum=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if envbool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Secrets at rest (BYOK keys, observability credentials): comma-separated Fernet keys,
# the first encrypts, all decrypt.
ENCRYPTION_KEYS = envlist("ENCRYPTION_KEYS")
if not ENCRYPTION_KEYS and not DEBUG:
    raise SettingsError("ENCRYPTION_KEYS must be set when DEBUG is off (generate one with "
                        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)")
# API key digests: HMAC-SHA256 under a pepper; API_KEY_PEPPERS="id:secret,..." (the first signs new keys).
API_KEY_PEPPERS = envlist("API_KEY_PEPPERS")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["workspaces.api.authentication.ManagementKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["workspaces.api.permissions.IsManagementKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["workspaces.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "workspaces.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "openrouter_ws API",
    "DESCRIPTION": "OpenRouter-compatible inference and management API of a self-hosted gateway.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The docs page's assets are served from the sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"ResetIntervalEnum": ["daily", "weekly", "monthly"],
                            "DataRegionEnum": "workspaces.policy_services.REGIONS"},
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "routing.openapi.add_inference_paths"],
}

# The gateway.
GATEWAY = {
    "MAX_REQUEST_BYTES": envint("MAX_REQUEST_BYTES", 10 * 1024 * 1024, minimum=1024),
    "MAX_ATTEMPTS": envint("MAX_ATTEMPTS", 4, minimum=1),
    "UPSTREAM_CONNECT_TIMEOUT": envfloat("UPSTREAM_CONNECT_TIMEOUT", 10.0, minimum=0.1),
    "UPSTREAM_FIRST_BYTE_TIMEOUT": envfloat("UPSTREAM_FIRST_BYTE_TIMEOUT", 60.0, minimum=0.1),
    "UPSTREAM_READ_TIMEOUT": envfloat("UPSTREAM_READ_TIMEOUT", 120.0, minimum=0.1),
    "KEEPALIVE_AFTER": envfloat("KEEPALIVE_AFTER", 2.0, minimum=0.05),
    "KEEPALIVE_INTERVAL": envfloat("KEEPALIVE_INTERVAL", 5.0, minimum=0.05),
    "AUTH_CACHE_SECONDS": envfloat("AUTH_CACHE_SECONDS", 60.0, minimum=0),
    "BYOK_FEE_PERCENT": envdecimal("BYOK_FEE_PERCENT", "0"),
    "LAST_USED_RESOLUTION_SECONDS": envint("LAST_USED_RESOLUTION_SECONDS", 60, minimum=1),
    "RECORDER_LINGER_SECONDS": envfloat("RECORDER_LINGER_SECONDS", 0.02, minimum=0),
    "RESERVATION_SECONDS": envint("RESERVATION_SECONDS", 900, minimum=30),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # Django's own default config also gives "django" a console handler: replaced here, so a warning such as
    # "Not Found: ..." is printed once, by ours.
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False},
                "django.db.backends": {"level": "INFO"}},
}
