#!/usr/bin/perl

# foxgov ledger init and foxgov verify on a PostgreSQL ledger, against a
# real PostgreSQL started here: the schema made (twice is fine), a ledger
# table filled with rows computed in Perl (the chain with Digest::SHA,
# independently of core/) verifies; each tampering is refused naming its
# seq: a byte of any record changed, a row deleted (in the middle, at the
# tail), two rows' seq swapped, a wrong chain, a field of the wrong length,
# rows passed off as another tenant's.  The table refuses UPDATE and
# DELETE (append-only), row-level security shows an auditor role its
# tenant only, and a password in the URI is never printed.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256);
use JSON::PP;
use Test::More;

use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledger qw(vector_record);
use FoxGov::Test::Postgres;

plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $pg = FoxGov::Test::Postgres->new;
$pg->start;

my $uri = $pg->uri;
my $json = JSON::PP->new->utf8;

# The records of the vector flows, in the order the gateway makes them.
my @records;
for my $flow (qw(openai-chat-completion anthropic-streaming
                 servicenow-incident-read servicenow-write-held)) {
    my $call = eval { vector_record('ModelCallRecord', $flow) }
               // vector_record('ToolCallRecord', $flow);
    push @records, vector_record('AuthContext', $flow),
                   vector_record('PolicyDecisionRecord', $flow), $call;
}

sub hex_of { return '\\x' . unpack('H*', $_[0]) }

# Rows of @recs for $tenant: [seq, chain, envelope_hash, record], raw.
sub rows {
    my ($tenant, @recs) = @_;
    my $chain = sha256("foxgov-ledger-v1:$tenant");
    my ($seq, @rows) = (0);
    for my $r (@recs) {
        my $h = sha256($r);
        $chain = sha256($chain . $h);
        push @rows, [++$seq, $chain, $h, $r];
    }
    return @rows;
}

# The SQL that makes $tenant's ledger exactly @rows, its head the last
# (the append-only triggers set aside: replica role, as a superuser may).
sub fill_sql {
    my ($tenant, @rows) = @_;
    my $sql = "SET session_replication_role = replica;\n"
            . "DELETE FROM foxgov.ledger WHERE tenant_id = '$tenant';\n"
            . "DELETE FROM foxgov.head WHERE tenant_id = '$tenant';\n";
    for my $row (@rows) {
        my ($seq, $chain, $h, $r) = @$row;
        my $rec = $json->decode($r);
        $sql .= sprintf("INSERT INTO foxgov.ledger (tenant_id, seq, chain, "
            . "envelope_hash, record_type, record, trace_id, execution_id) "
            . "VALUES ('%s', %d, '%s', '%s', '%s', '%s', '%s', '%s');\n",
            $tenant, $seq, hex_of($chain), hex_of($h), $rec->{record_type},
            hex_of($r), $rec->{trace}{trace_id}, $rec->{execution_id});
    }
    if (@rows) {
        $sql .= sprintf("INSERT INTO foxgov.head VALUES ('%s', %d, '%s');\n",
                        $tenant, $rows[-1][0], hex_of($rows[-1][1]));
    }
    return $sql;
}

sub fill { $pg->psql(fill_sql(@_)) }

# Tamper with the table as a superuser can, triggers set aside.
sub tamper { $pg->psql("SET session_replication_role = replica;\n$_[0]") }

sub verify { return run_foxgov('verify', @_) }

my @good = rows('acme', @records);

# ------------------------------------------------------------- init

{
    my ($rc, $out, $err) = run_foxgov('ledger', 'init', $uri);
    is($rc, 0, 'foxgov ledger init') or diag($err);
    like($out, qr/schema foxgov version 1 created/, 'creates the schema');

    ($rc, $out, $err) = run_foxgov('ledger', 'init', $uri);
    is($rc, 0, 'and again') or diag($err);
    like($out, qr/schema foxgov version 1 is there already/,
         'finding it there');

    is($pg->psql("SELECT string_agg(tablename, ',' ORDER BY tablename) "
                 . "FROM pg_tables WHERE schemaname = 'foxgov'"),
       'checkpoint,head,ledger,meta,reader', 'its tables');
    is($pg->psql("SELECT string_agg(relname, ',' ORDER BY relname) "
                 . "FROM pg_class WHERE relrowsecurity AND relnamespace = "
                 . "'foxgov'::regnamespace"),
       'checkpoint,head,ledger,reader', 'with row-level security');

    # another version of the schema is refused, not changed
    $pg->psql("UPDATE foxgov.meta SET value = '2'");
    ($rc, undef, $err) = run_foxgov('ledger', 'init', $uri);
    is($rc, 1, 'a schema of another version: refused');
    like($err, qr/schema version 2 in this database/, 'saying which')
        or diag($err);
    $pg->psql("UPDATE foxgov.meta SET value = '1'");

    ($rc, undef, $err) = run_foxgov('ledger', 'init', 'file:/tmp/x');
    is($rc, 2, 'init of what is not a postgresql:// URI: usage');

    # the daemon's own role, in a schema an administrator made for it
    $pg->psql("CREATE DATABASE fleet");
    $pg->psql("CREATE ROLE ledgerd LOGIN;\n"
              . "CREATE SCHEMA foxgov AUTHORIZATION ledgerd", db => 'fleet');
    ($rc, undef, $err) = run_foxgov('ledger', 'init',
        $pg->uri(user => 'ledgerd', db => 'fleet'));
    is($rc, 0, 'init by a role owning only the schema foxgov') or diag($err);
    is($pg->psql("SELECT string_agg(DISTINCT tableowner, ',') FROM "
                 . "pg_tables WHERE schemaname = 'foxgov'", db => 'fleet'),
       'ledgerd', 'which then owns the tables');
}

# ----------------------------------------------------------- verify

fill('acme', @good);

{
    my ($rc, $out, $err) = verify($uri, '--tenant', 'acme');
    is($rc, 0, 'a whole PostgreSQL ledger verifies') or diag($err);
    my $head = unpack('H*', $good[-1][1]);
    like($out, qr/^\Q$uri\E: verified: tenant acme, 12 records, seq 1\.\.12,/,
         'with a summary');
    like($out, qr/, chain $head$/, 'naming the chain head');

    ($rc, undef, $err) = verify($uri);
    is($rc, 2, 'without --tenant: usage');
    like($err, qr/needs its tenant/, 'saying so');

    ($rc, undef, $err) = verify($uri, '--tenant', 'nobody');
    is($rc, 1, 'a tenant with no rows: refused');
    like($err, qr/the ledger is empty/, 'as empty') or diag($err);
}

# the table is append-only, even for its owner
{
    my ($rc, undef, $err) = $pg->psql_run(
        "UPDATE foxgov.ledger SET record = record WHERE seq = 1");
    isnt($rc, 0, 'UPDATE of the ledger table: refused');
    like($err, qr/UPDATE on foxgov\.ledger refused: it is append-only/,
         'by its trigger') or diag($err);
    ($rc, undef, $err) = $pg->psql_run("DELETE FROM foxgov.ledger");
    like($err, qr/DELETE on foxgov\.ledger refused/, 'DELETE too');
    ($rc, undef, $err) = $pg->psql_run("TRUNCATE foxgov.ledger");
    like($err, qr/TRUNCATE on foxgov\.ledger refused/, 'TRUNCATE too');
}

# one byte changed in each row's record: caught at that row's seq
for my $i (0 .. $#good) {
    my $seq = $i + 1;
    my $r = $good[$i][3];
    my $pos = int(length($r) * ($i + 1) / (@good + 1));
    my $c = substr($r, $pos, 1);
    substr($r, $pos, 1) = $c eq 'a' ? 'b' : ($c eq '1' ? '2' : 'a');
    fill('acme', @good);
    tamper(sprintf("UPDATE foxgov.ledger SET record = '%s' "
                   . "WHERE tenant_id = 'acme' AND seq = %d", hex_of($r),
                   $seq));
    my ($rc, undef, $err) = verify($uri, '--tenant', 'acme');
    is($rc, 1, "a byte of seq ${seq}'s record changed: refused");
    like($err, qr/^foxgov verify: \Q$uri\E: seq $seq: /,
         "and named at seq $seq") or diag($err);
}

{
    fill('acme', @good);
    tamper("DELETE FROM foxgov.ledger WHERE tenant_id = 'acme' AND seq = 5");
    my ($rc, undef, $err) = verify($uri, '--tenant', 'acme');
    is($rc, 1, 'a row deleted: refused');
    like($err, qr/: seq 6: seq 6 follows seq 4/, 'where it was') or diag($err);

    fill('acme', @good);
    tamper("DELETE FROM foxgov.ledger WHERE tenant_id = 'acme' AND seq = 12");
    ($rc, undef, $err) = verify($uri, '--tenant', 'acme');
    is($rc, 1, 'the last row deleted: refused');
    like($err, qr/: seq 12: the ledger ends at seq 11 but foxgov\.head/,
         'against the head') or diag($err);

    fill('acme', @good);
    tamper("UPDATE foxgov.ledger SET seq = 1000 "
           . "WHERE tenant_id = 'acme' AND seq = 5;\n"
           . "UPDATE foxgov.ledger SET seq = 5 "
           . "WHERE tenant_id = 'acme' AND seq = 6;\n"
           . "UPDATE foxgov.ledger SET seq = 6 "
           . "WHERE tenant_id = 'acme' AND seq = 1000;");
    ($rc, undef, $err) = verify($uri, '--tenant', 'acme');
    is($rc, 1, 'two rows\' seq swapped: refused');
    like($err, qr/: seq 5: .*chain/, 'at the first of them') or diag($err);

    fill('acme', @good);
    tamper(sprintf("UPDATE foxgov.ledger SET chain = '%s' "
                   . "WHERE tenant_id = 'acme' AND seq = 8",
                   hex_of(sha256('wrong'))));
    ($rc, undef, $err) = verify($uri, '--tenant', 'acme');
    is($rc, 1, 'a wrong chain: refused');
    like($err, qr/: seq 8: .*chain/, 'at its seq') or diag($err);

    # the rest recomputed after a changed record: caught by the head
    my @forged = rows('acme', @records[0 .. 6]);
    fill('acme', @forged);
    tamper(sprintf("UPDATE foxgov.head SET seq = 12, chain = '%s' "
                   . "WHERE tenant_id = 'acme'", hex_of($good[-1][1])));
    ($rc, undef, $err) = verify($uri, '--tenant', 'acme');
    is($rc, 1, 'a ledger shorter than its head: refused');
    like($err, qr/: seq 8: the ledger ends at seq 7 but foxgov\.head is at/,
         'naming the first missing seq') or diag($err);

    # rows passed off as another tenant's: the genesis differs
    fill('acme', @good);
    $pg->psql(fill_sql('other', @good));
    ($rc, undef, $err) = verify($uri, '--tenant', 'other');
    is($rc, 1, 'a ledger verified as another tenant\'s: refused');
    like($err, qr/: seq 1: seq 1: chain is not/, 'at seq 1') or diag($err);
    $pg->psql(fill_sql('other'));

    # what the schema's checks keep out, when they are gone
    fill('acme', @good);
    tamper("ALTER TABLE foxgov.ledger DROP CONSTRAINT ledger_chain_check;\n"
           . "UPDATE foxgov.ledger SET chain = substr(chain, 1, 31) "
           . "WHERE tenant_id = 'acme' AND seq = 3");
    ($rc, undef, $err) = verify($uri, '--tenant', 'acme');
    is($rc, 1, 'a chain of 31 bytes: refused');
    like($err, qr/: seq 3: .*32 bytes/, 'at its seq') or diag($err);
    fill('acme', @good);
    $pg->psql("ALTER TABLE foxgov.ledger ADD CONSTRAINT ledger_chain_check "
              . "CHECK (octet_length(chain) = 32)");

    ($rc) = verify($uri, '--tenant', 'acme');
    is($rc, 0, 'the ledger put back verifies again');
}

# ------------------------------------------- row-level security, URIs

{
    $pg->psql(fill_sql('other', rows('other', @records[0 .. 2])));
    $pg->psql(join(";\n",
        "CREATE ROLE auditor_acme LOGIN",
        "CREATE ROLE nobody_much LOGIN",
        "GRANT USAGE ON SCHEMA foxgov TO auditor_acme, nobody_much",
        "GRANT SELECT ON ALL TABLES IN SCHEMA foxgov "
            . "TO auditor_acme, nobody_much",
        "INSERT INTO foxgov.reader (role_name, tenant_id) "
            . "VALUES ('auditor_acme', 'acme')"));

    is($pg->psql("SELECT count(*) FROM foxgov.ledger"), 15,
       'the owner sees every tenant\'s rows');
    is($pg->psql("SELECT string_agg(DISTINCT tenant_id, ',') "
                 . "FROM foxgov.ledger", user => 'auditor_acme'),
       'acme', 'an auditor granted acme sees acme\'s rows only');
    is($pg->psql("SELECT count(*) FROM foxgov.ledger", user => 'nobody_much'),
       0, 'a role granted no tenant sees no row');
    is($pg->psql("SELECT count(*) FROM foxgov.reader", user => 'nobody_much'),
       0, 'nor who may read what');

    my ($rc, undef, $err) = $pg->psql_run("SET foxgov.tenant = 'other'; "
        . "SELECT count(*) FROM foxgov.ledger WHERE tenant_id = 'other'",
        user => 'auditor_acme');
    is($rc, 0, 'a setting an auditor may change ...');
    ($rc, my $out) = $pg->psql_run("SELECT count(*) FROM foxgov.ledger "
        . "WHERE tenant_id = 'other'", user => 'auditor_acme');
    is($out, "0\n", '... opens no other tenant');

    $pg->psql("GRANT INSERT ON foxgov.ledger TO auditor_acme");
    ($rc, undef, $err) = $pg->psql_run(fill_sql('acme', $good[0]) =~
        s/^.*?(INSERT INTO foxgov\.ledger[^\n]*)\n.*/$1/sr,
        user => 'auditor_acme');
    isnt($rc, 0, 'an auditor granted INSERT still cannot write a row');
    like($err, qr/row-level security|permission denied/, 'refused')
        or diag($err);

    my $aud = $pg->uri(user => 'auditor_acme');
    ($rc, my $vout, $err) = verify($aud, '--tenant', 'acme');
    is($rc, 0, 'the auditor verifies acme\'s ledger') or diag($err);
    like($vout, qr/12 records/, 'all of it');
    ($rc, undef, $err) = verify($aud, '--tenant', 'other');
    is($rc, 1, 'and sees nothing of another tenant\'s');

    # a password in the URI is never printed (trust auth ignores it)
    my $secret = 'pw-s3cr3t-XYZ';
    my $bad = sprintf('postgresql://foxgov:%s@127.0.0.1:%d/nodb',
                      $secret, $pg->port);
    ($rc, my $o2, $err) = verify($bad, '--tenant', 'acme');
    is($rc, 2, 'a database that is not there: cannot be read (2)');
    like($err, qr/nodb/, 'saying which') or diag($err);
    unlike("$o2$err", qr/\Q$secret\E/, 'never showing the password');
    ($rc, $o2, $err) = run_foxgov('ledger', 'init', $bad);
    is($rc, 2, 'ledger init on it: no connection (2)');
    unlike("$o2$err", qr/\Q$secret\E/, 'the password not shown either');

    my $pw = $pg->uri(db => "foxgov?password=$secret");
    ($rc, $o2, $err) = verify($pw, '--tenant', 'acme');
    is($rc, 0, 'a URI with a password parameter verifies') or diag($err);
    unlike("$o2$err", qr/\Q$secret\E/, 'and does not show it');
}

$pg->stop;

done_testing();
