# One word per job. `make run` and `make test` set themselves up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test convert scan verify mappings dist dist-check check-install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# compat editable mode: backends/ goes on sys.path, so pySigma's plugin discovery finds our
	# sigma.backends.* / sigma.pipelines.* namespace packages while sources stay editable.
	$(BIN)/pip install --quiet -e '.[test,deploy]' --config-settings editable_mode=compat
	# Real Lucene for the Elasticsearch query checks (Debian's liblucene8-java on Java 17);
	# best effort: without it those checks skip and say why.
	# libmagic: splunk-appinspect's python-magic needs it to check the packaged Splunk app.
	-@if { ! ls /usr/share/java/lucene-core-*.jar || ! ldconfig -p | grep -q libmagic.so.1; } >/dev/null 2>&1 \
	  && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq liblucene8-java libmagic1 >/dev/null; fi
	touch $(STAMP)

setup: $(STAMP)

# The main job on the embedded default: scan the bundled sample logs with the bundled rules,
# then convert every bundled rule for every target.
run: setup
	$(BIN)/r53sigma scan
	$(BIN)/r53sigma convert --target all > /dev/null

test: setup
	$(BIN)/python -m pytest -q

convert: setup
	$(BIN)/r53sigma convert --target all

scan: setup
	$(BIN)/r53sigma scan

mappings: setup
	$(BIN)/r53sigma mappings

verify: setup
	$(BIN)/r53sigma verify

# Deployable artifacts, rebuilt byte-identically and offline; `make dist-check` fails if dist/ is stale.
dist: setup
	$(BIN)/r53sigma package --out dist

dist-check: setup
	$(BIN)/r53sigma package --out dist --check

# A clean virtualenv with a plain (non-editable) install, then stock sigma-cli on our rules and
# on SigmaHQ's DNS rules: proves the plugins are found the way any user would install them.
check-install:
	rm -rf build/check-venv
	$(PYTHON) -m venv build/check-venv
	build/check-venv/bin/pip install --quiet .
	cd build && ./check-venv/bin/sigma list pipelines | grep route53_
	# %ioc_domains% from a user's list through the environment, as any sigma-cli user gives it.
	printf 'evil.example\n*.c2.example\n' > build/ioc_domains.txt
	# -s: a rule the target cannot state (e.g. the Public Suffix List fields in Splunk) is skipped with
	# its "not expressible" reason; any other error, or a non-zero exit, fails the check.
	cd build && R53SIGMA_IOC_DOMAINS=ioc_domains.txt ./check-venv/bin/sigma convert -s -t splunk -p route53_splunk $$(grep -rL '^correlation:' ../sigma_rules --include='*.yml') > /dev/null 2> splunk-skipped.txt \
	  && ! sed -n '/^Ignored errors:/,$$p' splunk-skipped.txt | grep '\.yml: ' | grep -v 'not expressible' || { cat splunk-skipped.txt; exit 1; }
	# Splunk and CloudWatch correlations: one may fail only with the pipeline's or backend's documented refusal.
	cd build && for f in $$(grep -rl '^correlation:' ../sigma_rules --include='*.yml'); do \
	  ./check-venv/bin/sigma convert -t splunk -p route53_splunk $$f > /dev/null 2> splunk-error.txt \
	    || grep -q "not expressible" splunk-error.txt || { cat splunk-error.txt; exit 1; }; done
	# Lucene has no correlations (pySigma's Lucene backend refuses them even with -s): Lucene gets the
	# single-event rule files.
	cd build && R53SIGMA_IOC_DOMAINS=ioc_domains.txt ./check-venv/bin/sigma convert -s -t lucene -p route53_elasticsearch $$(grep -rL '^correlation:' ../sigma_rules --include='*.yml') > /dev/null 2> lucene-skipped.txt \
	  && ! sed -n '/^Ignored errors:/,$$p' lucene-skipped.txt | grep '\.yml: ' | grep -v 'not expressible' || { cat lucene-skipped.txt; exit 1; }
	# ES|QL: every correlation file; one may fail only with the pipeline's documented "not expressible" reason.
	cd build && for f in $$(grep -rl '^correlation:' ../sigma_rules --include='*.yml'); do \
	  ./check-venv/bin/sigma convert -t esql -p route53_elasticsearch $$f > /dev/null 2> esql-error.txt \
	    || grep -q "not expressible" esql-error.txt || { cat esql-error.txt; exit 1; }; done
	cd build && R53SIGMA_IOC_DOMAINS=ioc_domains.txt ./check-venv/bin/sigma convert -s -t cloudwatch -p route53_cloudwatch $$(grep -rL '^correlation:' ../sigma_rules --include='*.yml') > /dev/null 2> cloudwatch-skipped.txt \
	  && ! sed -n '/^Ignored errors:/,$$p' cloudwatch-skipped.txt | grep '\.yml: ' | grep -v 'not expressible\|: CloudWatch Logs Insights: ' || { cat cloudwatch-skipped.txt; exit 1; }
	cd build && for f in $$(grep -rl '^correlation:' ../sigma_rules --include='*.yml'); do \
	  ./check-venv/bin/sigma convert -t cloudwatch -p route53_cloudwatch $$f > /dev/null 2> cloudwatch-error.txt \
	    || grep -q "CloudWatch Logs Insights: " cloudwatch-error.txt || { cat cloudwatch-error.txt; exit 1; }; done
	if [ -d ../shared/corpus/sigmahq/dns_category/rules ]; then \
	  cd build && for t in "splunk -p route53_splunk" "lucene -p route53_elasticsearch" "cloudwatch -p route53_cloudwatch"; do \
	    ./check-venv/bin/sigma convert -t $$t ../../shared/corpus/sigmahq/dns_category/rules/ > /dev/null || exit 1; done; \
	fi
	cd build && ./check-venv/bin/r53sigma convert --target all > /dev/null

clean:
	rm -rf $(VENV) build *.egg-info
