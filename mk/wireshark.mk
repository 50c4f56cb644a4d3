# The Wireshark dissector tools/wireshark/rose.lua is generated from the
# project's own tables (tools/replay/src/wireshark.rs); a test in `make test`
# fails while the committed file differs from what the generator writes.

.PHONY: wireshark-lua

wireshark-lua:
	$(CARGO) run --locked -q -p packet-service-replay --bin replay -- --wireshark-lua \
		> tools/wireshark/rose.lua.tmp && mv tools/wireshark/rose.lua.tmp tools/wireshark/rose.lua
