# Deployment targets, included from the top-level Makefile.
#
#   make install                  build release, install binary, units, env file
#   make install DESTDIR=/tmp/x   stage under /tmp/x (no systemctl calls)
#   make install NO_BUILD=1       install an already built release binary
#   make uninstall [PURGE=1]      remove them (PURGE=1 also removes the env file)
#   make verify-unit              systemd-analyze verify + security score
#
# The env file is installed only when absent, so local settings survive
# reinstalls. systemctl runs only on the real root (no DESTDIR) and only when
# systemd is the running init ([ -d /run/systemd/system ]).

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= /etc/systemd/system
CONFDIR ?= /etc/packet-service
CARGO ?= cargo
# Highest acceptable `systemd-analyze security` exposure for verify-unit, in
# tenths (20 = 2.0 on systemd's 0-10 scale).
UNIT_EXPOSURE_MAX ?= 20

DEPLOY_NAME := packet-service
DEPLOY_BIN := $(or $(CARGO_TARGET_DIR),target)/release/$(DEPLOY_NAME)
DEPLOY_UNIT := deploy/$(DEPLOY_NAME).service
# Every unit installed: the service, its per-core template, its socket, the
# standalone backend.
DEPLOY_UNITS := $(DEPLOY_NAME).service $(DEPLOY_NAME)@.service $(DEPLOY_NAME).socket \
	$(DEPLOY_NAME)-backend.service
DEPLOY_ENV := deploy/$(DEPLOY_NAME).env
# The units name the default install path; rewrite it for another BINDIR.
DEPLOY_UNIT_EXEC := sed 's|^ExecStart=/usr/local/bin/$(DEPLOY_NAME)|ExecStart=$(BINDIR)/$(DEPLOY_NAME)|'
# True when systemctl should be called.
DEPLOY_SYSTEMD := [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]

.PHONY: install uninstall verify-unit

install:
ifneq ($(NO_BUILD),1)
	$(CARGO) build --release --locked --bin $(DEPLOY_NAME)
endif
	install -D -m 0755 $(DEPLOY_BIN) $(DESTDIR)$(BINDIR)/$(DEPLOY_NAME)
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	@for unit in $(DEPLOY_UNITS); do \
		echo "install deploy/$$unit $(DESTDIR)$(UNITDIR)/$$unit"; \
		$(DEPLOY_UNIT_EXEC) deploy/$$unit > $(DESTDIR)$(UNITDIR)/$$unit && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	@if [ -e $(DESTDIR)$(CONFDIR)/$(DEPLOY_NAME).env ]; then \
		echo "keeping existing $(DESTDIR)$(CONFDIR)/$(DEPLOY_NAME).env"; \
	else \
		echo "install -D -m 0640 $(DEPLOY_ENV) $(DESTDIR)$(CONFDIR)/$(DEPLOY_NAME).env"; \
		install -D -m 0640 $(DEPLOY_ENV) $(DESTDIR)$(CONFDIR)/$(DEPLOY_NAME).env; \
	fi
	@if $(DEPLOY_SYSTEMD); then \
		echo "systemctl daemon-reload"; systemctl daemon-reload; \
		echo "installed; start with: systemctl enable --now $(DEPLOY_NAME)"; \
		echo "  (or $(DEPLOY_NAME).socket, or $(DEPLOY_NAME)-backend and $(DEPLOY_NAME)@1 … @N: see README)"; \
	fi

uninstall:
	@if $(DEPLOY_SYSTEMD) && [ -e $(UNITDIR)/$(DEPLOY_NAME).service ]; then \
		instances=$$(cd $(UNITDIR) && ls -d *.wants/$(DEPLOY_NAME)@?*.service 2>/dev/null | xargs -rn1 basename); \
		units="$(DEPLOY_NAME).socket $(DEPLOY_NAME).service $(DEPLOY_NAME)-backend.service $$instances"; \
		echo "systemctl disable --now $$units"; \
		systemctl disable --now $$units || true; \
	fi
	rm -f $(DESTDIR)$(BINDIR)/$(DEPLOY_NAME) $(addprefix $(DESTDIR)$(UNITDIR)/,$(DEPLOY_UNITS))
	@if [ "$(PURGE)" = 1 ]; then \
		echo "rm -f $(DESTDIR)$(CONFDIR)/$(DEPLOY_NAME).env"; \
		rm -f $(DESTDIR)$(CONFDIR)/$(DEPLOY_NAME).env; \
		rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(CONFDIR)/$(DEPLOY_NAME).env ]; then \
		echo "keeping $(DESTDIR)$(CONFDIR)/$(DEPLOY_NAME).env (PURGE=1 removes it)"; \
	fi
	@if $(DEPLOY_SYSTEMD); then echo "systemctl daemon-reload"; systemctl daemon-reload; fi

# verify checks that ExecStart exists, so check copies whose ExecStart points at
# a binary that does (the release build if present, else /bin/true). The
# template is checked through one instance; the security score applies to every
# service.
verify-unit:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	exe=/bin/true && if [ -x $(DEPLOY_BIN) ]; then exe=$(abspath $(DEPLOY_BIN)); fi && \
	for unit in $(DEPLOY_UNITS); do \
		sed "s|^ExecStart=[^ ]*|ExecStart=$$exe|" deploy/$$unit > "$$tmp/$$unit" || exit 1; \
	done && \
	mv "$$tmp/$(DEPLOY_NAME)@.service" "$$tmp/$(DEPLOY_NAME)@1.service" && \
	echo "systemd-analyze verify $(DEPLOY_UNITS) (ExecStart=$$exe)" && \
	systemd-analyze verify "$$tmp/$(DEPLOY_NAME).service" "$$tmp/$(DEPLOY_NAME)@1.service" \
		"$$tmp/$(DEPLOY_NAME).socket" "$$tmp/$(DEPLOY_NAME)-backend.service" && \
	for unit in $(DEPLOY_NAME).service $(DEPLOY_NAME)@1.service $(DEPLOY_NAME)-backend.service; do \
		out=$$(systemd-analyze security --offline=true --threshold=$(UNIT_EXPOSURE_MAX) \
			"$$tmp/$$unit" 2>&1); rc=$$?; \
		printf '%s: %s\n' "$$unit" "$$(printf '%s\n' "$$out" | tail -n 1)"; \
		[ $$rc -eq 0 ] || exit $$rc; \
	done
