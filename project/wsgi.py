import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_wsgi_application()

# What a worker has loaded by now (Django, the models, the URLconf and every view it imports) lives
# as long as the process, yet each full garbage collection walks all of it: ~110,000 objects, 45-55
# ms, landing on whichever request passes the collector's threshold (about one in 200 console
# pages). Load the URLconf now and move everything to the permanent generation: full collections
# then take a few ms (bench/README.md, "Sixth session"). Objects made later are collected as usual.
get_resolver().url_patterns  # noqa: B018 - imports the views
gc.freeze()
