"""Use cases: each public function is one transaction, run through Store.write or Store.read."""
