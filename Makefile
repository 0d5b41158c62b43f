# crm_security: PGXS build.  The control file is the one source of the version.
EXTENSION  = crm_security
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = $(EXTENSION)
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
HEADERS    = $(wildcard src/*.h)

# The install script of the current version is built from its numbered pieces, in order.
SQL_PIECES = $(sort $(wildcard sql/[0-9][0-9]_*.sql))

# Releases (docs/upgrading.md).  The install script of every released version is kept as
# shipped, committed and never edited, so that `CREATE EXTENSION crm_security VERSION 'A'`
# keeps working.  Each step A--B of UPGRADES gets an upgrade script
# sql/crm_security--A--B.sql, built from the pieces sql/upgrade/B/*.sql in name order.
RELEASED_SQL = sql/$(EXTENSION)--0.1.0.sql
UPGRADES     = 0.1.0--0.2.0
UPGRADE_SQL  = $(foreach u,$(UPGRADES),sql/$(EXTENSION)--$(u).sql)

DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(UPGRADE_SQL)
DATA       = $(RELEASED_SQL)

PG_CONFIG ?= pg_config
PKG_CONFIG ?= pkg-config

PG_CPPFLAGS = -DCRM_SECURITY_VERSION="\"$(EXTVERSION)\"" $(shell $(PKG_CONFIG) --cflags libcrypto 2>/dev/null)
SHLIB_LINK  = $(shell $(PKG_CONFIG) --libs libcrypto 2>/dev/null || echo -lcrypto)
# `make WERROR=1` (what `make test` and CI use) turns every warning into an error.
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
ifdef WERROR
PG_CFLAGS  += -Werror
endif

EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql $(UPGRADE_SQL) .build-flags

# pg_regress suite for `make installcheck` against a running server (PGHOST, PGPORT,
# PGUSER): test/sql/*.sql against test/expected/*.out, in order (00_install creates the
# extension).  Run from the top of the checkout: the tests include test/sql/regress_keys.inc.
REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): $(HEADERS)

# Every object depends on the compiler flags: .build-flags holds them and is rewritten only
# when they change, so `make WERROR=1` after a plain `make` rebuilds everything with -Werror.
BUILD_FLAGS = $(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_SL)
.build-flags: FORCE
	@printf '%s\n' '$(subst ','\'',$(BUILD_FLAGS))' | cmp -s - $@ || \
	    printf '%s\n' '$(subst ','\'',$(BUILD_FLAGS))' > $@
$(OBJS): .build-flags

.PHONY: FORCE
FORCE:

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PIECES) $(EXTENSION).control
	( echo '-- crm_security $(EXTVERSION): generated from sql/[0-9][0-9]_*.sql, do not edit'; \
	  for f in $(SQL_PIECES); do echo; echo "-- $$f"; cat $$f; done ) > $@

# upgrade_rule A--B: sql/crm_security--A--B.sql from sql/upgrade/B/*.sql.  The directory is a
# prerequisite too, so that adding or removing a piece rebuilds the script.
define upgrade_rule
sql/$(EXTENSION)--$(1).sql: $$(sort $$(wildcard sql/upgrade/$(lastword $(subst --, ,$(1)))/*.sql)) sql/upgrade/$(lastword $(subst --, ,$(1))) $(EXTENSION).control
	( echo '-- crm_security $(subst --, to ,$(1)): generated from sql/upgrade/$(lastword $(subst --, ,$(1)))/*.sql, do not edit'; \
	  printf '%s\n' '\echo Use "ALTER EXTENSION crm_security UPDATE TO '"'"'$(lastword $(subst --, ,$(1)))'"'"'" to load this file. \quit'; \
	  for f in $$(sort $$(wildcard sql/upgrade/$(lastword $(subst --, ,$(1)))/*.sql)); do echo; echo "-- $$$$f"; cat $$$$f; done ) > $$@
endef
$(foreach u,$(UPGRADES),$(eval $(call upgrade_rule,$(u))))

.PHONY: test test-citus check-memory fuzz demo demo-stop bench bench-citus
test:
	bash test/run.sh

# The Citus suite alone (test/scripts/citus.sh, docs/citus.md); `make test` runs it too.
test-citus:
	CRM_TESTS="pgtap scripts" CRM_ONLY=citus bash test/run.sh

# The pg_regress and pgTAP suites with the server under valgrind's memcheck (docs/testing.md).
check-memory:
	CRM_SANITIZE=valgrind CRM_TESTS="$${CRM_TESTS:-regress pgtap}" bash test/run.sh

# Every libFuzzer target for CRM_FUZZ_SECONDS (default 300) each (docs/testing.md).
fuzz:
	CRM_FUZZ_SECONDS=$${CRM_FUZZ_SECONDS:-300} bash test/fuzz/run.sh

demo:
	bash test/demo.sh start

demo-stop:
	bash test/demo.sh stop

bench:
	bash test/bench.sh

bench-citus:
	CRM_ONLY=citus bash test/bench.sh
