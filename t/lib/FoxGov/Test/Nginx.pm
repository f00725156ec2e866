package FoxGov::Test::Nginx;

# A small harness for foxgov's integration tests, in the manner of
# nginx-tests' lib/Test/Nginx.pm: one nginx per object, in its own temp dir,
# on random loopback ports, driven with raw HTTP.  The POD at the end says
# how to use it.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Test::More ();
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(
    repo_root module_path nginx_binary
    http_status http_header http_body
    blocks run_blocks
);

my $ROOT = abs_path(File::Spec->catdir(dirname(__FILE__),
    File::Spec->updir(), File::Spec->updir(), File::Spec->updir(),
    File::Spec->updir()));

my %LIVE;           # running instances, stopped by END
my %PORTS_TAKEN;    # ports handed out in this process

###########################################################################
# Paths

sub repo_root { return $ROOT }

sub _abs {
    my ($p) = @_;
    return File::Spec->rel2abs($p);
}

# The module to load: $FOXGOV_MODULE or build/modules/...
sub module_path {
    return _abs($ENV{FOXGOV_MODULE}) if $ENV{FOXGOV_MODULE};
    return "$ROOT/build/modules/ngx_http_foxgov_module.so";
}

# The nginx binary: $FOXGOV_NGINX or /usr/sbin/nginx.
sub nginx_binary {
    return _abs($ENV{FOXGOV_NGINX}) if $ENV{FOXGOV_NGINX};
    return '/usr/sbin/nginx';
}

###########################################################################
# Construction

sub new {
    my ($class, %opts) = @_;

    my $keep = $ENV{FOXGOV_TEST_KEEP} ? 1 : 0;
    my $tmp = File::Temp->newdir('foxgov-t-XXXXXXXX', TMPDIR => 1,
        CLEANUP => !$keep);

    # As root, nginx's workers run as its default user (nobody), which must
    # be able to reach the temp paths inside this dir: open it up rather
    # than run the workers as root, which would hide permission bugs.
    chmod 0755, "$tmp" or die "chmod $tmp: $!";

    Test::More::diag("keeping $tmp") if $keep;

    my $self = bless {
        tmp     => $tmp,
        dir     => "$tmp",
        ports   => {},
        pid     => undef,
        timeout => $opts{timeout} || $ENV{FOXGOV_TEST_TIMEOUT} || 10,
    }, $class;

    # UBSan findings in nginx's own code (compiled as src/..., while the
    # module's files have absolute paths) that are not ours to fix: nginx
    # passes NULL with a zero length to memcpy (ngx_cpymem, "%V" of an
    # empty string).  Used only by a UBSan build.
    $self->write_file('ubsan.supp', "nonnull-attribute:^src/\n");

    # LeakSanitizer: nginx 1.22's own PCRE2 compile context (rewrite and
    # regex locations) is never freed.  Everything else a running nginx
    # and the module allocate is freed at exit and checked.
    $self->write_file('lsan.supp', "leak:ngx_regex_malloc\n");

    return $self;
}

sub testdir { return $_[0]{dir} }

# The loopback port standing for %%PORT_n%%: picked once per n, free when
# picked (bound to port 0, then closed).
sub port {
    my ($self, $n) = @_;

    return $self->{ports}{$n} if defined $self->{ports}{$n};

    for (1 .. 50) {
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1',
            LocalPort => 0,
            Proto     => 'tcp',
            ReuseAddr => 1,
        ) or die "cannot bind a loopback port: $!";
        my $p = $s->sockport();
        close $s;
        next if $PORTS_TAKEN{$p}++;
        return $self->{ports}{$n} = $p;
    }

    die "no free loopback port";
}

###########################################################################
# Configuration

# Replace %%PORT_n%% and %%TESTDIR%% in $text.
sub expand {
    my ($self, $text) = @_;

    $text =~ s/%%PORT_(\d+)%%/$self->port($1)/ge;
    $text =~ s/%%TESTDIR%%/$self->{dir}/g;

    return $text;
}

# Write nginx.conf: $body goes inside http {}.  Options:
#   main        => text for the main context (env, thread_pool, ...)
#   events      => text inside events {}
#   load_module => 0 to leave the module out
#   master_process => 'off' to run a single process
sub write_config {
    my ($self, $body, %opts) = @_;

    my $d = $self->{dir};
    my $load = (!exists $opts{load_module} || $opts{load_module})
        ? 'load_module ' . module_path() . ";\n" : '';
    my $master = $opts{master_process} || 'on';
    my $main = $opts{main} // '';
    my $events = $opts{events} // '';

    my $conf = <<"EOF";
# written by FoxGov::Test::Nginx
${load}
master_process $master;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log debug;

$main

events {
$events
}

http {
    access_log $d/access.log;

    client_body_temp_path $d/client_body_temp;
    proxy_temp_path $d/proxy_temp;
    fastcgi_temp_path $d/fastcgi_temp;
    uwsgi_temp_path $d/uwsgi_temp;
    scgi_temp_path $d/scgi_temp;

$body
}
EOF

    $self->write_file('nginx.conf', $self->expand($conf));

    return $self;
}

sub write_file {
    my ($self, $name, $content) = @_;

    my $path = "$self->{dir}/$name";
    open my $fh, '>', $path or die "open $path: $!";
    print {$fh} $content;
    close $fh or die "close $path: $!";

    return $path;
}

sub read_file {
    my ($self, $name) = @_;

    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    open my $fh, '<', $path or return '';
    local $/;
    my $content = <$fh>;
    close $fh;

    return $content // '';
}

###########################################################################
# Running nginx

sub _child_env {
    my ($self, $leaks) = @_;

    # Sanitizer defaults, used only by an ASan/UBSan build; the caller's own
    # options come after them and win.  A running nginx frees its pools at
    # exit (master and workers), so leaks are reported, less nginx's own
    # (lsan.supp); "nginx -t" exits without freeing anything, so it runs
    # without leak detection.  Every dynamic module defines its own
    # ngx_modules[] and ngx_module_names[], which the binary defines too
    # (nginx finds the module's with dlsym): an "ODR violation" by design.
    $ENV{ASAN_OPTIONS} = join ':', 'detect_leaks=' . ($leaks ? 1 : 0),
        'detect_odr_violation=0', grep { length } $ENV{ASAN_OPTIONS} // '';
    $ENV{LSAN_OPTIONS} = join ':', "suppressions=$self->{dir}/lsan.supp",
        'print_suppressions=0', grep { length } $ENV{LSAN_OPTIONS} // '';
    $ENV{UBSAN_OPTIONS} = join ':', 'print_stacktrace=1',
        "suppressions=$self->{dir}/ubsan.supp",
        grep { length } $ENV{UBSAN_OPTIONS} // '';
}

sub _nginx_args {
    my ($self) = @_;
    my $d = $self->{dir};
    return (nginx_binary(), '-p', "$d/", '-c', "$d/nginx.conf",
        '-e', "$d/error.log");
}

# nginx -t: returns (exit code, output).
sub test_config {
    my ($self) = @_;

    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        _child_env($self);
        open STDERR, '>&', \*STDOUT or die "dup: $!";
        my @args = (_nginx_args($self), '-t');
        exec { $args[0] } @args or die "exec $args[0]: $!\n";
    }

    local $/;
    my $out = <$fh> // '';
    close $fh;

    return ($? >> 8, $out);
}

# Start nginx (master_process on, daemon off, in its own process group) and
# wait for its pid file.  Dies with the error log's tail on failure.
sub run {
    my ($self) = @_;

    die "nginx already running" if $self->{pid};

    my $d = $self->{dir};
    unlink "$d/nginx.pid";

    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        _child_env($self, 1);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$d/stderr.log";
        open STDERR, '>&', \*STDOUT;
        my @args = _nginx_args($self);
        exec { $args[0] } @args or POSIX::_exit(127);
    }

    $self->{pid} = $pid;
    $LIVE{$pid} = $self;
    weaken($LIVE{$pid});

    my $deadline = time() + $self->{timeout};

    while (time() < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            my $status = $? >> 8;
            delete $LIVE{$pid};
            $self->{pid} = undef;
            die "nginx exited ($status) while starting:\n" . $self->_tail();
        }

        if (-s "$d/nginx.pid") {
            my $p = $self->read_file('nginx.pid');
            chomp $p;
            return $self if $p eq $pid;
        }

        sleep 0.02;
    }

    $self->stop();
    die "nginx did not write its pid file in $self->{timeout}s:\n"
        . $self->_tail();
}

sub is_running { return defined $_[0]{pid} }

# Graceful stop: QUIT, wait up to the timeout, then KILL the process group.
# Returns the master's exit status (or -1 if it had to be killed).
sub stop {
    my ($self) = @_;

    my $pid = $self->{pid} or return 0;
    my $status = -1;

    kill 'QUIT', $pid;

    my $deadline = time() + $self->{timeout};
    while (time() < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $status = $? >> 8;
            last;
        }
        sleep 0.02;
    }

    if ($status == -1) {
        Test::More::diag("nginx $pid did not stop on QUIT, killing it");
        kill 'KILL', -$pid;
        waitpid($pid, 0);
    }

    # Workers left behind (they should not be) go with the group.
    kill 'KILL', -$pid;

    delete $LIVE{$pid};
    $self->{pid} = undef;
    $self->{exit_status} = $status;

    return $status;
}

sub reload {
    my ($self) = @_;
    kill 'HUP', $self->{pid} if $self->{pid};
    return $self;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop() if $self->{pid};
}

END {
    local $?;
    for my $t (grep { defined } values %LIVE) {
        $t->stop();
    }
}

###########################################################################
# Logs

sub _tail {
    my ($self) = @_;
    my @l = split /\n/, $self->read_file('error.log')
        . $self->read_file('stderr.log');
    @l = grep { !/\[debug\]/ } @l;
    splice @l, 0, @l - 20 if @l > 20;
    return join("\n", @l) . "\n";
}

# True when error.log (and nginx's captured stderr) have no [alert],
# [emerg] or [crit] line and no sanitizer report.  In list context:
# (ok, offending lines...).
sub error_log_ok {
    my ($self) = @_;

    my @bad;
    for my $f ('error.log', 'stderr.log') {
        for my $line (split /\n/, $self->read_file($f)) {
            push @bad, $line
                if $line =~ /\[(?:alert|emerg|crit)\]/
                || $line =~ /ERROR: (?:Address|Leak|Thread|Memory)Sanitizer/
                || $line =~ /SUMMARY: \w+Sanitizer/
                || $line =~ /: runtime error: /;
        }
    }

    return wantarray ? (!@bad ? 1 : 0, @bad) : !@bad;
}

###########################################################################
# HTTP

# Send $raw over a fresh connection and return everything read until the
# server closes (or the timeout).  Options: port (default %%PORT_8080%%),
# timeout (seconds, default 5).  undef if the connection failed.
sub http {
    my ($self, $raw, %opts) = @_;

    my $port = $opts{port} // $self->port(8080);
    my $timeout = $opts{timeout} // 5;

    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => $timeout,
    );

    unless ($s) {
        Test::More::diag("connect to 127.0.0.1:$port: $!");
        return undef;
    }

    $s->autoflush(1);
    my $sel = IO::Select->new($s);
    my $deadline = time() + $timeout;

    my $off = 0;
    while ($off < length $raw) {
        my $left = $deadline - time();
        last if $left <= 0 || !IO::Select->new($s)->can_write($left);
        my $n = syswrite($s, $raw, length($raw) - $off, $off);
        last unless defined $n;
        $off += $n;
    }

    my $resp = '';
    while (1) {
        my $left = $deadline - time();
        if ($left <= 0 || !$sel->can_read($left)) {
            Test::More::diag("http: timed out after ${timeout}s");
            last;
        }
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $resp .= $buf;
    }

    close $s;

    return $resp;
}

sub http_get {
    my ($self, $uri, %opts) = @_;
    return $self->http("GET $uri HTTP/1.0\r\nHost: localhost\r\n\r\n",
        %opts);
}

sub http_status {
    my ($resp) = @_;
    return undef unless defined $resp;
    return $resp =~ m{^HTTP/\d\.\d (\d{3})} ? $1 : undef;
}

sub http_header {
    my ($resp, $name) = @_;
    return undef unless defined $resp;
    my ($head) = split /\r\n\r\n/, $resp, 2;
    return $head =~ /^\Q$name\E:[ \t]*(.*?)\r?$/mi ? $1 : undef;
}

sub http_body {
    my ($resp) = @_;
    return undef unless defined $resp;
    my (undef, $body) = split /\r\n\r\n/, $resp, 2;
    return $body;
}

###########################################################################
# Data-driven blocks

# Parse blocks from a string or a filehandle (default: main::DATA).
sub blocks {
    my ($src) = @_;

    my $text;
    if (defined $src && !ref $src) {
        $text = $src;
    } else {
        my $fh = $src // do { no strict 'refs'; \*{'main::DATA'} };
        local $/;
        $text = <$fh> // '';
    }

    my (@blocks, $block, $sec);

    for my $line (split /^/, $text) {
        if ($line =~ /^===\s*(.*?)\s*$/) {
            $block = { name => $1 };
            push @blocks, $block;
            undef $sec;
        } elsif ($line =~ /^---\s*(\w+)\s*(?::\s*(.*?))?\s*$/) {
            die "section '$1' outside a block\n" unless $block;
            $sec = $1;
            if (defined $2) {
                $block->{$sec} = $2;
                undef $sec;
            } else {
                $block->{$sec} = '';
            }
        } elsif ($block && defined $sec) {
            $block->{$sec} .= $line;
        }
    }

    for my $blk (@blocks) {
        s/\n+\z// for values %$blk;
    }

    return @blocks;
}

# Turn a block's "--- request" into raw HTTP: the first line is
# "METHOD URI"; later lines, if any, are the body.
sub _block_request {
    my ($req) = @_;

    my ($line, $body) = split /\n/, $req, 2;
    my ($method, $uri) = split ' ', $line;
    my $raw = "$method $uri HTTP/1.0\r\nHost: localhost\r\n";
    $raw .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    $raw .= "\r\n";
    $raw .= $body if defined $body;

    return $raw;
}

sub run_blocks {
    my @blocks = @_ ? @_ : blocks();

    for my $blk (@blocks) {
        Test::More::subtest($blk->{name}, sub { _run_block($blk) });
    }
}

sub _run_block {
    my ($blk) = @_;

    my $t = __PACKAGE__->new();
    my $server = <<"EOF";
    server {
        listen 127.0.0.1:%%PORT_8080%%;
        server_name localhost;

@{[ $blk->{config} // '' ]}
    }
EOF

    $t->write_config(($blk->{http_config} // '') . "\n" . $server,
        main => $blk->{main_config});

    my ($rc, $out) = $t->test_config();

    if (defined $blk->{config_error}) {
        Test::More::isnt($rc, 0, 'nginx -t fails');
        Test::More::like($out, qr/$blk->{config_error}/, 'config error');
        return;
    }

    Test::More::is($rc, 0, 'nginx -t') or Test::More::diag($out);
    return if $rc != 0;

    $t->run();

    if (defined $blk->{request}) {
        my $resp = $t->http(_block_request($blk->{request}));

        if (defined $blk->{error_code}) {
            Test::More::is(http_status($resp), $blk->{error_code}, 'status');
        }
        if (defined $blk->{response_body}) {
            my $got = http_body($resp);
            $got =~ s/\n+\z// if defined $got;
            Test::More::is($got, $blk->{response_body}, 'body');
        }
        if (defined $blk->{response_body_like}) {
            Test::More::like(http_body($resp),
                qr/$blk->{response_body_like}/s, 'body like');
        }
    }

    Test::More::is($t->stop(), 0, 'nginx stops cleanly');

    my ($ok, @bad) = $t->error_log_ok();
    Test::More::ok($ok, 'no alerts in error.log')
        or Test::More::diag(join "\n", @bad);
}

1;

__END__

=head1 NAME

FoxGov::Test::Nginx - run nginx with ngx_http_foxgov_module in a temp dir

=head1 SYNOPSIS

    use FindBin;
    use lib "$FindBin::Bin/lib";
    use Test::More;
    use FoxGov::Test::Nginx qw(module_path http_status http_body);

    plan skip_all => 'module not built' unless -f module_path();

    my $t = FoxGov::Test::Nginx->new();
    $t->write_config(<<'EOF');
        server {
            listen 127.0.0.1:%%PORT_8080%%;
            location /t { foxgov on; return 200 ok; }
        }
    EOF

    my ($rc, $out) = $t->test_config();     # nginx -t
    $t->run();                              # start, wait for the pid file
    my $r = $t->http_get('/t');
    is(http_status($r), 200);
    $t->stop();
    ok(scalar $t->error_log_ok());

    done_testing();

=head1 DESCRIPTION

Each object owns a temp dir (removed at the end unless C<FOXGOV_TEST_KEEP>
is set) holding F<nginx.conf>, F<error.log>, F<access.log>, the pid file and
every C<*_temp_path>.  nginx runs as C<nginx -p DIR/ -c DIR/nginx.conf -e
DIR/error.log> with C<master_process on> and C<daemon off>, forked by the
harness into its own process group, so it can be waited for and, if it
does not stop on QUIT, killed with its workers.  An END block stops every
nginx still running.

When the tests run as root, nginx's workers switch to nginx's default user
(nobody): the temp dir is made 0755 so they can reach their temp paths.
No C<user root> is written, so permission mistakes show up in tests as
they would in production.

=head2 Environment

=over

=item FOXGOV_NGINX

The nginx binary (default F</usr/sbin/nginx>).

=item FOXGOV_MODULE

The module to load (default F<build/modules/ngx_http_foxgov_module.so> in
the repo).  An ASan module loads only into the ASan nginx built from the
same tree: C<FOXGOV_NGINX=build/nginx-asan/sbin/nginx
FOXGOV_MODULE=build/modules-asan/ngx_http_foxgov_module.so prove t/>.
ASAN_OPTIONS is prefixed with C<detect_leaks=1> for a running nginx
(C<detect_leaks=0> for C<nginx -t>, which frees nothing) and
C<detect_odr_violation=0> (the module's C<ngx_modules> and
C<ngx_module_names> shadow the binary's by design), LSAN_OPTIONS with a
suppression of nginx's own PCRE2 context (C<ngx_regex_malloc>), UBSAN_OPTIONS with
C<print_stacktrace=1> and a suppressions file for UBSan's
C<nonnull-attribute> in nginx's own F<src/> (memcpy of NULL with length 0);
options you set come after and win.

=item FOXGOV_TEST_TIMEOUT

Seconds to wait for nginx to start or stop (default 10).

=item FOXGOV_TEST_KEEP

Keep the temp dir and print its path.

=back

=head2 Methods

=over

=item new(%opts)

A fresh temp dir.  C<timeout> overrides FOXGOV_TEST_TIMEOUT.

=item write_config($http_body, %opts)

Writes F<nginx.conf>: C<load_module> of the module, C<master_process>,
C<daemon off>, C<pid>, C<error_log ... debug>, C<events {}>, and C<http {}>
with C<access_log> and the temp paths, around C<$http_body>.  Options:
C<main> (text for the main context), C<events> (inside C<events {}>),
C<load_module =E<gt> 0>, C<master_process =E<gt> 'off'>.  C<%%PORT_n%%>
becomes a free loopback port (the same one for the same n, see C<port>);
C<%%TESTDIR%%> becomes the temp dir.

=item port($n)

The port standing for C<%%PORT_n%%>.

=item testdir, write_file($name, $content), read_file($name)

The temp dir, and files in it.

=item test_config

Runs C<nginx -t>; returns (exit code, stdout and stderr).

=item run

Starts nginx and waits for its pid file; dies with the error log's tail if
nginx exits or times out.

=item stop

QUIT, wait, KILL after the timeout.  Returns the master's exit status, -1
if it had to be killed.  Also done by DESTROY.

=item reload

Sends HUP.

=item http($raw, port =E<gt> $p, timeout =E<gt> $s)

Sends C<$raw> to 127.0.0.1 (default port C<%%PORT_8080%%>) and returns all
that was read until the server closed or the timeout (default 5 s) passed;
undef if the connection failed.

=item http_get($uri, %opts)

C<GET $uri HTTP/1.0> with C<Host: localhost>.

=item error_log_ok

False if F<error.log> or nginx's stderr holds an C<[alert]>, C<[emerg]> or
C<[crit]> line, or a sanitizer report; in list context (ok, bad lines).

=back

=head2 Functions (exported on request)

C<repo_root>, C<module_path>, C<nginx_binary>; C<http_status($resp)>,
C<http_header($resp, $name)>, C<http_body($resp)>; C<blocks>,
C<run_blocks>.

=head1 DATA-DRIVEN BLOCKS

In the spirit of Test::Nginx:

    use FoxGov::Test::Nginx qw(run_blocks);
    run_blocks();
    done_testing();

    __DATA__

    === TEST 1: foxgov on in a location
    --- config
        location /t {
            foxgov on;
            return 200 ok;
        }
    --- request
    GET /t
    --- error_code: 200
    --- response_body_like: ^ok$

    === TEST 2: bad value
    --- config
        location /t { foxgov maybe; }
    --- config_error: invalid value "maybe"

Each block runs as a subtest with its own nginx.  C<--- config> goes
inside C<server { listen 127.0.0.1:%%PORT_8080%%; server_name localhost; }>,
C<--- http_config> into C<http {}>, C<--- main_config> into the main
context.  C<--- request> is C<METHOD URI> on its first line, the body (sent
with Content-Length) on the lines after it, sent as HTTP/1.0.  Checks:
C<--- error_code> (the status), C<--- response_body> (exact),
C<--- response_body_like> (a regex, /s), C<--- config_error> (a regex:
C<nginx -t> must fail with it, and nothing is started).  Every started
block also checks that nginx stops with status 0 and that C<error_log_ok>.
A section's value is on the same line after a colon, or on the lines below
it up to the next section; trailing newlines are dropped (C<response_body>
is compared with the response body's trailing newlines dropped too).

=cut
