"""Package discovery: the top-level folders ingestion/ and ml/ are installed as gridcredit.ingestion
and gridcredit.ml (the brief wants them at the top of the repository); every subpackage is found
automatically so adding one needs no edit here. Metadata lives in pyproject.toml."""

from setuptools import find_packages, setup

FOLDERS = {"gridcredit": "gridcredit", "gridcredit.ingestion": "ingestion", "gridcredit.ml": "ml"}

packages = []
for package, folder in FOLDERS.items():
    packages.append(package)
    packages.extend(f"{package}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir=FOLDERS)
