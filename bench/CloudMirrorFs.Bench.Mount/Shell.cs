using System.ComponentModel;
using System.Diagnostics;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>Runs a tool to completion with a time limit; a tool that overruns (a hung mount) is killed and reported.</summary>
internal static class Shell
{
    public static async Task<ShellResult> RunAsync(
        string file, IReadOnlyList<string> args, TimeSpan timeout, CancellationToken cancellationToken, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? string.Empty,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = new Process { StartInfo = psi };
        var sw = Stopwatch.StartNew();
        try
        {
            p.Start();
        }
        catch (Win32Exception e)
        {
            throw new BenchFailureException($"cannot start {file}: {e.Message}", e);
        }
        p.StandardInput.Close();
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderr = p.StandardError.ReadToEndAsync(CancellationToken.None);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await p.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            cancellationToken.ThrowIfCancellationRequested();
            string err = await TryGetAsync(stderr);
            throw new BenchFailureException(
                $"`{Describe(file, args)}` did not finish within {timeout.TotalSeconds:0} s and was killed{(err.Length > 0 ? "; stderr: " + Tail(err, 20) : string.Empty)}");
        }
        return new ShellResult(p.ExitCode, await stdout, await stderr, sw.Elapsed);
    }

    /// <summary>As <see cref="RunAsync"/>, failing unless the tool exits 0.</summary>
    public static async Task<ShellResult> CheckAsync(
        string file, IReadOnlyList<string> args, TimeSpan timeout, CancellationToken cancellationToken, string? workingDirectory = null)
    {
        ShellResult r = await RunAsync(file, args, timeout, cancellationToken, workingDirectory);
        if (r.ExitCode != 0)
        {
            throw new BenchFailureException(
                $"`{Describe(file, args)}` exited with code {r.ExitCode}: {Tail(r.Stderr.Trim().Length > 0 ? r.Stderr : r.Stdout, 30)}");
        }
        return r;
    }

    public static string Describe(string file, IEnumerable<string> args) => string.Join(' ', args.Prepend(file));

    /// <summary>The full path of <paramref name="name"/> on PATH, or null.</summary>
    public static string? Which(string name)
    {
        string path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (string dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin"]))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>The last <paramref name="lines"/> lines of a text.</summary>
    public static string Tail(string text, int lines)
    {
        string[] all = text.TrimEnd().Split('\n');
        return all.Length <= lines ? string.Join('\n', all) : "...\n" + string.Join('\n', all[^lines..]);
    }

    private static async Task<string> TryGetAsync(Task<string> output)
    {
        try
        {
            return await output.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
            return string.Empty;
        }
    }
}
