# TAP helpers shared by the shell suites; sourced after PSQL and DB are set.
n=0
failed=0

check() {  # check DESCRIPTION EXPECTED ACTUAL
    n=$((n + 1))
    if [ "$2" = "$3" ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        echo "#   expected: $2"
        echo "#   got:      $3"
        failed=1
    fi
}
q() { "${PSQL[@]}" -d "$DB" "$@" 2>&1; }
