from tests.golden import write_missing

print("\n".join(write_missing()) or "all golden files exist")
