# Sourced by the CI scripts that run a project's own tests from a Debian
# source package. Defines:
#   aptget ARGS...            apt-get as root, or through passwordless sudo;
#                             fails with a clear message otherwise
#   fetch_debian_source PKG DIR
#                             downloads PKG's upstream tarball into DIR/PKG
#                             and unpacks it there (prints the tree's path);
#                             adds deb-src lines for the system's release
#                             first if there are none, and removes them again
#                             on exit (debian_source_cleanup)

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        echo "needs root or passwordless sudo for: $*" >&2
        return 1
    fi
}
aptget() { as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

DEBIAN_SRC_LIST=/etc/apt/sources.list.d/larder-ci-src.sources
DEBIAN_SRC_ADDED=""

debian_source_cleanup() {
    if [ -n "$DEBIAN_SRC_ADDED" ]; then
        as_root rm -f "$DEBIAN_SRC_LIST"
    fi
}

fetch_debian_source() {
    local pkg=$1 dir=$2/$1
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
            "${uri:-http://deb.debian.org/debian}" "$codename" \
            | as_root tee "$DEBIAN_SRC_LIST" >/dev/null || return 1
        DEBIAN_SRC_ADDED=1
        aptget update -qq >&2 || return 1
    fi
    mkdir -p "$dir" || return 1
    # Downloading needs no root. Only the upstream tarball is needed: a
    # missing Debian patch file (the mirror here sometimes answers 404 for
    # one) does not stop the run.
    (cd "$dir" && apt-get source --download-only "$pkg" >/dev/null 2>&1)
    local tarballs=("$dir"/*.orig.tar.*)
    if [ ! -f "${tarballs[0]}" ] || [ ${#tarballs[@]} -ne 1 ]; then
        echo "cannot download the upstream tarball of $pkg (apt-get source $pkg)" >&2
        return 1
    fi
    tar -xf "${tarballs[0]}" -C "$dir" || return 1
    local trees=()
    for tree in "$dir"/*/; do
        trees+=("${tree%/}")
    done
    if [ ${#trees[@]} -ne 1 ]; then
        echo "expected one source tree in $dir, found ${#trees[@]}" >&2
        return 1
    fi
    echo "${trees[0]}"
}
