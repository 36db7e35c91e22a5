using System.Diagnostics;

namespace CloudMirrorFs.Mount.Tests;

/// <summary>What the mount tests need from the machine; a missing piece fails loudly with the command that installs it.</summary>
public static class Prerequisites
{
    public static void RequireFuse()
    {
        if (!File.Exists("/dev/fuse"))
        {
            Assert.Fail("/dev/fuse is missing: load the module ('modprobe fuse') or run the container with --device /dev/fuse");
        }
        if (!File.Exists("/usr/lib/x86_64-linux-gnu/libfuse3.so.3") && !File.Exists("/lib/x86_64-linux-gnu/libfuse3.so.3"))
        {
            Assert.Fail("libfuse3 is not installed: run 'apt-get install -y fuse3 libfuse3-dev'");
        }
    }

    /// <summary>Fails unless <paramref name="program"/> is on PATH.</summary>
    public static string RequireProgram(string program, string package)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
        {
            string p = Path.Combine(dir, program);
            if (File.Exists(p))
            {
                return p;
            }
        }
        Assert.Fail($"{program} is not installed: run 'apt-get install -y {package}'");
        return "";
    }

    /// <summary>Runs a program to completion; fails the test with its output when it exits non-zero.</summary>
    public static async Task<string> RunAsync(string program, string workingDirectory, TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["GIT_AUTHOR_NAME"] = psi.Environment["GIT_COMMITTER_NAME"] = "cmfs test";
        psi.Environment["GIT_AUTHOR_EMAIL"] = psi.Environment["GIT_COMMITTER_EMAIL"] = "test@cmfs.invalid";
        using var p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s");
        }
        string output = await o + await e;
        if (p.ExitCode != 0)
        {
            Assert.Fail($"{program} {string.Join(' ', args)} exited {p.ExitCode}:\n{output}");
        }
        return output;
    }
}
