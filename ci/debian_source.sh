# Sourced by the CI scripts that run a project's own tests from a Debian
# source package. Defines:
#   aptget ARGS...            apt-get as root (or through passwordless sudo)
#   fetch_debian_source PKG DIR
#                             downloads PKG's upstream tarball into DIR and
#                             unpacks it there; adds deb-src lines for the
#                             system's release first if there are none, and
#                             removes them again on exit (debian_source_cleanup)

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "needs root or passwordless sudo to install packages with apt" >&2
        exit 1
    fi
fi
aptget() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

DEBIAN_SRC_LIST=/etc/apt/sources.list.d/larder-ci-src.sources
DEBIAN_SRC_ADDED=""

debian_source_cleanup() {
    if [ -n "$DEBIAN_SRC_ADDED" ]; then
        $SUDO rm -f "$DEBIAN_SRC_LIST"
    fi
}

fetch_debian_source() {
    local pkg=$1 dir=$2
    if ! grep -rqs '^\(Types: .*deb-src\|deb-src \)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # The same mirror and release as the binary packages, for sources.
        local codename uri
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        if [ -z "$codename" ]; then
            echo "no VERSION_CODENAME in /etc/os-release: cannot name the release for deb-src" >&2
            return 1
        fi
        uri=$(grep -rhs '^URIs:.*debian' /etc/apt/sources.list.d/ | grep -v security | head -1 | awk '{print $2}')
        printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "${uri:-http://deb.debian.org/debian}" "$codename" | $SUDO tee "$DEBIAN_SRC_LIST" >/dev/null || return 1
        DEBIAN_SRC_ADDED=1
        aptget update -qq || return 1
    fi
    # apt-get falls back to downloading as root when its _apt user cannot
    # write here (a warning, not an error). Only the upstream tarball is
    # needed: a missing Debian patch file does not stop the run.
    (cd "$dir" && aptget source --download-only "$pkg" >/dev/null 2>&1)
    local tarball
    tarball=$(ls "$dir/${pkg}"_*.orig.tar.* 2>/dev/null | head -1)
    if [ -z "$tarball" ]; then
        echo "cannot download the source package $pkg (apt-get source $pkg)" >&2
        return 1
    fi
    tar -xf "$tarball" -C "$dir"
}
