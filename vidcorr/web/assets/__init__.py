"""The pages' HTML, CSS and JavaScript: package data (``vidcorr.web.pages`` reads them). A package of its own so that
setuptools installs the folder as a listed package instead of warning about it."""
