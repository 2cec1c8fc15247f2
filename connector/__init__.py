"""clinic-crm-connector: sync a clinic's CRM into SQL, score its staff, push the results back."""

__version__ = "0.1.0"
