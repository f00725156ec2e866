package FoxGov::Test::Postgres;

# A real PostgreSQL for a test: initdb in a temp dir, the server on a free
# loopback port (and a unix socket in the temp dir), with the default
# durability (fsync on, synchronous_commit on), so what a COMMIT
# acknowledged survives a crash as in production.  Run as nobody when the
# test runs as root (PostgreSQL refuses root; CI is root), the temp dir
# chowned to it.  Stopped at the end of the test whatever happens.
#
#     my $pg = FoxGov::Test::Postgres->new;   # plan skip_all without it
#     plan tests => ...;
#     $pg->start;
#     my $uri = $pg->uri;         # postgresql://foxgov@127.0.0.1:PORT/foxgov
#     my $out = $pg->psql('SELECT 1');        # dies when psql fails
#     my ($rc, $out, $err) = $pg->psql_run($sql, user => 'auditor');
#     $pg->stop;
#
# The binaries are looked for in $FOXGOV_PG_BIN, then in the newest
# /usr/lib/postgresql/*/bin (Debian's postgresql package).

use strict;
use warnings;

use FoxGov::Test::Fixtures qw(free_port);

use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);

my @LIVE;

# The directory holding initdb, postgres and psql, or undef.
sub bindir {
    my @dirs = grep { defined && length } $ENV{FOXGOV_PG_BIN};
    push @dirs, map { $_->[1] }
                sort { $b->[0] <=> $a->[0] }
                map { m{/postgresql/(\d+)/bin\z} ? [$1, $_] : () }
                glob('/usr/lib/postgresql/*/bin');
    for my $d (@dirs) {
        return $d if -x "$d/initdb" && -x "$d/postgres" && -x "$d/psql"
                     && -x "$d/pg_isready";
    }
    return undef;
}

sub available { return defined bindir() }

sub new {
    my ($class, %o) = @_;

    my $bin = bindir();
    Test::More::plan(skip_all => 'PostgreSQL binaries not found (install '
                     . 'postgresql or set FOXGOV_PG_BIN)') unless $bin;

    my $self = bless {
        bin  => $bin,
        dir  => $o{dir} // tempdir('foxgov-pg-XXXXXXXX', TMPDIR => 1,
                                   CLEANUP => 1),
        port => $o{port} // free_port(),
        user => $o{user} // 'foxgov',
        db   => $o{db} // 'foxgov',
    }, $class;
    push @LIVE, $self;
    return $self;
}

sub port { return $_[0]{port} }
sub dir  { return $_[0]{dir} }
sub user { return $_[0]{user} }
sub db   { return $_[0]{db} }
sub bin  { return "$_[0]{bin}/$_[1]" }
sub pid  { return $_[0]{pid} }

# postgresql://USER@127.0.0.1:PORT/DB (user and db may be given).
sub uri {
    my ($self, %o) = @_;
    return sprintf('postgresql://%s@127.0.0.1:%d/%s',
                   $o{user} // $self->{user}, $self->{port},
                   $o{db} // $self->{db});
}

# Test that `foxgov verify` passes a tenant's ledger in this database
# (its default URI) with $n records, seq 1..$n; $what names the step.
sub verify_ok {
    my ($self, $tenant, $n, $what) = @_;
    my ($rc, $out, $err) = FoxGov::Test::Fixtures::run_foxgov('verify',
        $self->uri, '--tenant', $tenant);
    Test::More::is($rc, 0, "$what: ${tenant}'s ledger verifies")
        or Test::More::diag($err);
    Test::More::like($out,
        qr/verified: tenant $tenant, $n records, seq 1\.\.$n,/,
        "$what: $tenant: $n records");
}

# The server's log so far.
sub log {
    my ($self) = @_;
    open my $f, '<', "$self->{dir}/postgres.log" or return '';
    local $/;
    return scalar <$f>;
}

# In a child about to exec a server binary: become nobody when we are
# root (PostgreSQL refuses root), so the binary itself is what the test
# signals and waits for.  Exits the child when that fails.
sub _drop_root {
    return if $> != 0;
    my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
    POSIX::_exit(125) unless defined $uid;
    $) = "$gid $gid";
    POSIX::setgid($gid) or POSIX::_exit(125);
    POSIX::setuid($uid) or POSIX::_exit(125);
    POSIX::_exit(125) if $> != $uid || $< != $uid || $( != $gid;
}

sub _chown_tree {
    my ($self) = @_;
    return if $> != 0;
    my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
    chown $uid, $gid, $self->{dir} or die "chown $self->{dir}: $!";
}

# Run a command (as the server's user when $server), stdin from $in, with
# a timeout: (rc, stdout, stderr).
sub _run {
    my ($self, $in, $timeout, $server, @cmd) = @_;
    my $n = ++$self->{runs};
    my ($pi, $po, $pe) = map { "$self->{dir}/run-$$-$n.$_" } qw(in out err);

    open my $f, '>:raw', $pi or die "$pi: $!";
    print {$f} $in // '';
    close $f;

    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        $ENV{LC_ALL} = 'C';
        delete @ENV{qw(PGPASSWORD PGSERVICE PGOPTIONS PGSSLMODE PGHOST
                       PGPORT PGUSER PGDATABASE)};
        open STDIN, '<', $pi or POSIX::_exit(126);
        open STDOUT, '>', $po or POSIX::_exit(126);
        open STDERR, '>', $pe or POSIX::_exit(126);
        _drop_root() if $server;
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }

    my $rc;
    my $deadline = time() + $timeout;
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) { $rc = $? >> 8; last }
        if (time() > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $rc = -1;
            last;
        }
        sleep 0.005;
    }

    my @r = ($rc);
    for my $p ($po, $pe) {
        open my $g, '<:raw', $p or die "$p: $!";
        local $/;
        push @r, scalar(<$g>) // '';
        close $g;
    }
    unlink $pi, $po, $pe;
    return @r;
}

sub start {
    my ($self) = @_;

    my $data = "$self->{dir}/data";
    $self->_chown_tree;

    unless (-e "$data/PG_VERSION") {
        # --no-sync for initdb only: the files it writes are fsynced by
        # nothing, which a test's throwaway cluster can afford; the server
        # itself runs with fsync on
        my ($rc, $out, $err) = $self->_run('', 120, 1,
            $self->bin('initdb'), '-D', $data, '-U', $self->{user},
            '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync',
            '--no-instructions');
        die "initdb failed ($rc): $err$out" if $rc != 0;
    }

    # a unix socket beside the data, when its path fits sun_path
    my $sock = length("$self->{dir}/.s.PGSQL.$self->{port}") < 100
             ? $self->{dir} : '';

    my @server = ($self->bin('postgres'), '-D', $data,
        '-p', $self->{port},
        '-c', 'listen_addresses=127.0.0.1',
        '-c', "unix_socket_directories=$sock",
        '-c', 'fsync=on',
        '-c', 'synchronous_commit=on',
        '-c', 'full_page_writes=on',
        '-c', 'max_connections=50',
        '-c', 'logging_collector=off',
        '-c', 'log_min_messages=warning');

    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        $ENV{LC_ALL} = 'C';
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/postgres.log";
        open STDERR, '>&', \*STDOUT;
        _drop_root();
        exec { $server[0] } @server or POSIX::_exit(127);
    }
    $self->{pid} = $pid;

    my $deadline = time() + 30;
    while (1) {
        my ($rc) = $self->_run('', 5, 0, $self->bin('pg_isready'), '-q',
            '-h', '127.0.0.1', '-p', $self->{port}, '-U', $self->{user},
            '-d', 'postgres', '-t', '1');
        last if $rc == 0;
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            die "postgres exited: " . $self->log;
        }
        die "postgres did not start on $self->{port}: " . $self->log
            if time() > $deadline;
        sleep 0.05;
    }

    unless ($self->{created}++) {
        my ($rc, $out, $err) = $self->psql_run(
            qq{SELECT 1 FROM pg_database WHERE datname = '$self->{db}'},
            db => 'postgres');
        die "psql failed ($rc): $err" if $rc != 0;
        if ($out !~ /1/) {
            ($rc, $out, $err) = $self->psql_run(
                qq{CREATE DATABASE "$self->{db}"}, db => 'postgres');
            die "CREATE DATABASE failed ($rc): $err" if $rc != 0;
        }
    }

    return $self;
}

# psql_run(sql, user => U, db => D, timeout => S, args => [...]): the SQL
# on psql's stdin (stop at the first error, unaligned, tuples only, no
# psqlrc): (rc, stdout, stderr).
sub psql_run {
    my ($self, $sql, %o) = @_;
    return $self->_run($sql, $o{timeout} // 60, 0, $self->bin('psql'),
        '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
        '-h', '127.0.0.1', '-p', $self->{port},
        '-U', $o{user} // $self->{user}, '-d', $o{db} // $self->{db},
        @{ $o{args} // [] }, '-f', '-');
}

# psql(sql, ...): its stdout; dies (with psql's error) when it fails.
sub psql {
    my ($self, $sql, %o) = @_;
    my ($rc, $out, $err) = $self->psql_run($sql, %o);
    die "psql failed ($rc): $err" if $rc != 0;
    chomp $out;
    return $out;
}

# Fast shutdown (stop: SIGINT, connections closed, a checkpoint) or a
# crash (kill9: SIGKILL, to test recovery).  It is gone when this returns.
sub stop  { $_[0]->_signal('INT', 60) }
sub kill9 { $_[0]->_signal('KILL', 10) }

sub _signal {
    my ($self, $sig, $timeout) = @_;
    my $pid = delete $self->{pid} or return;
    kill $sig, $pid;
    my $deadline = time() + $timeout;
    while (waitpid($pid, WNOHANG) != $pid) {
        if (time() > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.02;
    }
    # a SIGKILLed postmaster's backends notice and exit on their own;
    # remove the pid file so a start() in the same dir is not refused
    unlink "$self->{dir}/data/postmaster.pid" if $sig eq 'KILL';
}

END {
    # immediate shutdown: the postmaster SIGQUITs its backends and exits
    local $?;
    for my $s (@LIVE) {
        $s->_signal('QUIT', 10) if $s->{pid};
    }
}

1;
