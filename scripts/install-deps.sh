#!/usr/bin/env bash
# install-deps.sh makes sure the system tools Keel needs are present (Debian):
#   - the PostgreSQL server binaries initdb, pg_ctl and postgres, in PATH or
#     in /usr/lib/postgresql/*/bin (Debian package postgresql);
#   - when run as root, runuser (Debian package util-linux), with which a
#     root process runs postgres as the postgres user;
#   - Spectral, the OpenAPI linter the API tests run: a pinned
#     @stoplight/spectral-cli installed with npm (Debian package npm) into
#     $KEEL_TOOLS_DIR (default .tools in the repository, ignored by git);
#     skipped when that version is already there;
#   - the libvirt and QEMU packages the libvirt driver's tests run a private
#     libvirtd and real TCG guests with (adapters/libvirt/lvtest), and the
#     tools scripts/test-guest.sh builds the test guest disk with:
#     libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
#     syslinux syslinux-common mtools dosfstools genisoimage busybox-static
#     cpio (checked with dpkg-query);
#   - the OVN and Open vSwitch packages the OVN adapter's tests run a private
#     Northbound (and Southbound) ovsdb-server and ovn-northd from
#     (adapters/ovn/ovntest): ovn-central ovn-host openvswitch-switch
#     (checked with dpkg-query).
#
# It is idempotent and prints nothing when everything is present. As root it
# installs what is missing with apt-get. Otherwise it prints the apt-get
# command to run and exits 0: the tests that need PostgreSQL then skip with a
# reason.
#
# Keel runs private clusters (adapters/postgres/pgcluster), so when this
# script installs postgresql it first tells postgresql-common not to create
# and start the usual system cluster "main". Likewise, services that packages
# try to start while installing (libvirtd, virtlogd, postgresql, ovsdb-server,
# ovn-northd, ovn-controller, ovs-vswitchd) are denied
# with a temporary policy-rc.d: the tests start private daemons, and without
# systemd a failed start would fail the install.
#
# PG_BIN_GLOB overrides where the server binaries are looked for (testing).
set -euo pipefail

pg_bin_glob=${PG_BIN_GLOB:-/usr/lib/postgresql/*/bin}
spectral_version=6.16.3
tools_dir=${KEEL_TOOLS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools}

log() { printf 'install-deps: %s\n' "$*" >&2; }

# have_pg_server succeeds when initdb, pg_ctl and postgres are in PATH or in
# one of the versioned server directories.
have_pg_server() {
  if command -v initdb && command -v pg_ctl && command -v postgres; then
    return 0
  fi >/dev/null
  local dir
  for dir in $pg_bin_glob; do
    if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
      return 0
    fi
  done
  return 1
}

# have_runuser succeeds when runuser is found; it is needed only as root.
have_runuser() {
  ((EUID != 0)) || command -v runuser || [[ -x /usr/sbin/runuser || -x /sbin/runuser ]]
} >/dev/null

# have_spectral succeeds when the pinned spectral-cli is in the tools dir.
have_spectral() {
  [[ -x $tools_dir/node_modules/.bin/spectral ]] &&
    grep -q "\"version\": \"$spectral_version\"" "$tools_dir/node_modules/@stoplight/spectral-cli/package.json"
} 2>/dev/null

# have_npm succeeds when npm (and node) are found, or are not needed.
have_npm() {
  have_spectral || command -v npm
} >/dev/null

# vm_packages are the Debian packages for libvirt, QEMU and the test guest.
vm_packages=(
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
  syslinux syslinux-common mtools dosfstools genisoimage busybox-static cpio
)

# ovn_packages are the Debian packages for OVN and Open vSwitch.
ovn_packages=(ovn-central ovn-host openvswitch-switch)

# have_deb succeeds when Debian package $1 is installed.
have_deb() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# missing_packages prints the Debian packages of the missing tools.
missing_packages() {
  have_pg_server || echo postgresql
  have_runuser || echo util-linux
  have_npm || echo npm
  local pkg
  for pkg in "${vm_packages[@]}" "${ovn_packages[@]}"; do
    have_deb "$pkg" || echo "$pkg"
  done
}

# install_spectral installs the pinned spectral-cli with npm (the npm
# registry is the only network it needs).
install_spectral() {
  have_spectral && return 0
  if ! command -v npm >/dev/null; then
    log "npm not found: the OpenAPI lint test will skip"
    return 0
  fi
  log "installing @stoplight/spectral-cli@$spectral_version into $tools_dir"
  npm install --prefix "$tools_dir" --no-audit --no-fund --loglevel=error \
    "@stoplight/spectral-cli@$spectral_version" >/dev/null
}

# no_system_cluster makes postgresql-common skip creating the "main" cluster.
no_system_cluster() {
  apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
  local conf=/etc/postgresql-common/createcluster.conf
  if grep -Eq '^[#[:space:]]*create_main_cluster' "$conf"; then
    sed -Ei 's/^[#[:space:]]*create_main_cluster.*/create_main_cluster = false/' "$conf"
  else
    echo 'create_main_cluster = false' >>"$conf"
  fi
}

install() {
  if ! command -v apt-get >/dev/null; then
    log "missing: $*; apt-get not found: install them with your package manager"
    exit 1
  fi
  log "installing: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  deny_service_starts
  if [[ " $* " == *" postgresql "* ]]; then
    no_system_cluster
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# deny_service_starts makes invoke-rc.d start no service until the script
# exits, through a policy-rc.d of its own (none is replaced).
deny_service_starts() {
  local policy=/usr/sbin/policy-rc.d
  [[ -e $policy ]] && return 0
  printf '#!/bin/sh\n# install-deps.sh: no service starts while installing.\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f '"$policy" EXIT
}

main() {
  local -a packages
  mapfile -t packages < <(missing_packages)
  if ((${#packages[@]} == 0)); then
    install_spectral
    return 0
  fi
  if ((EUID != 0)); then
    log "missing: ${packages[*]}; install them with:"
    log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages[*]}"
    install_spectral
    return 0
  fi
  install "${packages[@]}"
  mapfile -t packages < <(missing_packages)
  if ((${#packages[@]} != 0)); then
    log "still missing after install: ${packages[*]}"
    exit 1
  fi
  install_spectral
}

main "$@"
