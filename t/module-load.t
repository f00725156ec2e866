#!/usr/bin/perl

# The built module loads into nginx: its directive table is wired (nginx -t
# accepts "foxgov on" and points at the line of a bad value), and nginx
# starts, serves and stops cleanly with it loaded.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use FoxGov::Test::Nginx qw(module_path nginx_binary run_blocks
    http_status http_body);

my $module = module_path();

plan skip_all => "$module is missing: run lua-free-scripts/build-module"
    unless -f $module;
plan skip_all => nginx_binary() . ' is missing or not executable'
    unless -x nginx_binary();

my $server = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT_8080%%;
        server_name localhost;

        location /t {
            foxgov %%VALUE%%;
            return 200 ok;
        }

        location /plain {
            return 200 ok;
        }
    }
EOF

sub config_with {
    my ($value) = @_;
    (my $c = $server) =~ s/%%VALUE%%/$value/;
    return $c;
}

# (a) nginx -t accepts the module and "foxgov on".

{
    my $t = FoxGov::Test::Nginx->new();
    $t->write_config(config_with('on'));

    my ($rc, $out) = $t->test_config();
    is($rc, 0, 'nginx -t: load_module and "foxgov on"') or diag($out);
    like($out, qr/test is successful/, 'nginx -t: test is successful');
}

# (b) "foxgov maybe" fails nginx -t, naming the file and the line.

{
    my $t = FoxGov::Test::Nginx->new();
    my $conf = $t->testdir() . '/nginx.conf';
    $t->write_config(config_with('maybe'));

    my @lines = split /\n/, $t->read_file('nginx.conf');
    my ($line) = grep { $lines[$_ - 1] =~ /foxgov maybe;/ } 1 .. @lines;

    my ($rc, $out) = $t->test_config();
    isnt($rc, 0, 'nginx -t fails on "foxgov maybe"');
    my $want = qr/\[emerg\] invalid value "maybe" in "foxgov" directive/;
    like($out, qr/$want.* in \Q$conf\E:$line\n/,
        "the error names the value, $conf and line $line")
        or diag($out);
}

# (c) nginx starts with the module, serves, stops cleanly.

{
    my $t = FoxGov::Test::Nginx->new();
    $t->write_config(config_with('on'));
    $t->run();

    my $r = $t->http_get('/plain');
    is(http_status($r), 200, 'plain location: 200');
    is(http_body($r), 'ok', 'plain location: body');

    $r = $t->http_get('/t');
    is(http_status($r), 200, 'foxgov on location: 200');

    is($t->stop(), 0, 'nginx stops on QUIT with status 0');

    my ($ok, @bad) = $t->error_log_ok();
    ok($ok, 'no [alert], [emerg], [crit] or sanitizer report in error.log')
        or diag(join "\n", @bad);

    like($t->read_file('error.log'), qr/\[notice\].*exiting/,
        'error.log shows a graceful exit');
}

# The same through the data-driven blocks.

run_blocks();

done_testing();

__DATA__

=== foxgov set at http level is inherited
--- http_config
    foxgov on;
--- config
    location /t {
        return 200 ok;
    }
--- request
GET /t
--- error_code: 200
--- response_body: ok

=== foxgov off in a location
--- config
    location /t {
        foxgov off;
        return 200 "off here";
    }
--- request
GET /t
--- error_code: 200
--- response_body_like: ^off here$

=== foxgov takes one argument
--- config
    location /t { foxgov on off; }
--- config_error: invalid number of arguments in "foxgov" directive
