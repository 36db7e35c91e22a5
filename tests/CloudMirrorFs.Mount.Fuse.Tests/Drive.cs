using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace CloudMirrorFs.Mount.Tests;

/// <summary>
/// A real drive for a test: a volume in a temp folder (a local directory facet and a folder object-store remote),
/// mounted by a child <c>cmfs mount</c> process, stopped with SIGTERM or killed with SIGKILL.
/// </summary>
public sealed partial class Drive : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private Process? _process;

    private Drive(string dir, string localPath)
    {
        Dir = dir;
        ConfigPath = Path.Combine(dir, "cmfs.json");
        LocalPath = localPath;
    }

    public string Dir { get; }

    public string ConfigPath { get; }

    public string MountPath => Path.Combine(Dir, "drive");

    /// <summary>The local facet's folder: <c>local</c> in <see cref="Dir"/> unless the test put it elsewhere.</summary>
    public string LocalPath { get; }

    public string StateDir => Path.Combine(Dir, "state");

    public int? ProcessId => _process?.Id;

    /// <summary>What the mount process printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// A new volume in a folder under <paramref name="under"/> (/tmp by default); <paramref name="localPath"/> and
    /// <paramref name="remotePath"/> put its facets elsewhere (on other mounts, say), <paramref name="stateDir"/> its
    /// state (queue, maps, control socket).
    /// </summary>
    public static Drive Create(string? extraVolumeJson = null, string? localPath = null, string? remotePath = null, string under = "/tmp",
        string? stateDir = null)
    {
        Prerequisites.RequireFuse();
        string dir = Path.Combine(under, "cmfs-mount-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        localPath ??= Path.Combine(dir, "local");
        remotePath ??= Path.Combine(dir, "remote");
        File.WriteAllText(Path.Combine(dir, "cmfs.json"), $$"""
            {
              "volume": { "name": "test", "stateDir": {{System.Text.Json.JsonSerializer.Serialize(stateDir ?? "state")}}{{extraVolumeJson}} },
              "mount": { "path": "drive" },
              "facets": [
                { "name": "local", "role": "local", "kind": "directory", "path": {{System.Text.Json.JsonSerializer.Serialize(localPath)}} },
                { "name": "remote", "role": "remote", "kind": "folder", "path": {{System.Text.Json.JsonSerializer.Serialize(remotePath)}} }
              ]
            }
            """);
        return new Drive(dir, localPath);
    }

    /// <summary>Starts <c>cmfs mount</c> and waits until the drive answers.</summary>
    public async Task MountAsync()
    {
        if (_process is { HasExited: false })
        {
            throw new InvalidOperationException("already mounted");
        }
        lock (_output)
        {
            _output.Clear();
        }
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _process = Start(["mount", "--config", ConfigPath], line =>
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
            if (line.Contains("mounted at", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        });
        Task exited = _process.WaitForExitAsync();
        Task first = await Task.WhenAny(ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(60)));
        if (first != ready.Task)
        {
            throw new AssertFailedException($"cmfs mount did not come up ({(first == exited ? $"exit {_process.ExitCode}" : "timeout")}):\n{Output}");
        }
        if (!IsMounted(MountPath))
        {
            throw new AssertFailedException($"cmfs said it mounted, but {MountPath} is not in /proc/self/mounts:\n{Output}");
        }
    }

    /// <summary>SIGTERM (or <paramref name="signal"/>); returns how long the process took to exit (fails after 15 s).</summary>
    public async Task<TimeSpan> StopAsync(int signal = 15)
    {
        Process p = _process ?? throw new InvalidOperationException("not mounted");
        var sw = Stopwatch.StartNew();
        _ = Kill(p.Id, signal);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill();
            throw new AssertFailedException($"cmfs mount did not exit within 15 s of signal {signal}:\n{Output}");
        }
        sw.Stop();
        Assert.AreEqual(0, p.ExitCode, $"cmfs mount exit code after signal {signal}:\n{Output}");
        Assert.IsFalse(IsMounted(MountPath), "the drive is still mounted after the process exited");
        _process = null;
        return sw.Elapsed;
    }

    /// <summary>SIGKILL: the mount is left dead ("Transport endpoint is not connected") until the next mount clears it.</summary>
    public async Task KillAsync()
    {
        Process p = _process ?? throw new InvalidOperationException("not mounted");
        _ = Kill(p.Id, 9);
        await p.WaitForExitAsync();
        _process = null;
    }

    /// <summary>Runs another cmfs verb on this volume as a child process.</summary>
    public async Task<(int Code, string Out, string Err)> CmfsAsync(params string[] args)
    {
        var outText = new StringBuilder();
        using Process p = Start([.. args, "--config", ConfigPath], line =>
        {
            lock (outText)
            {
                outText.AppendLine(line);
            }
        });
        await p.WaitForExitAsync();
        lock (outText)
        {
            return (p.ExitCode, outText.ToString(), outText.ToString());
        }
    }

    private Process Start(string[] args, Action<string> onLine)
    {
        // Through env(1), which execs dotnet in its place (same pid), with SIGHUP at its default: a harness started
        // under nohup passes SIGHUP down ignored, and a cmfs started so keeps ignoring it, as nohup asks.
        var psi = new ProcessStartInfo("env")
        {
            WorkingDirectory = Dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--default-signal=HUP");
        psi.ArgumentList.Add(Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet"); // the test host's own
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cmfs.dll"));
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                onLine(e.Data);
            }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                onLine(e.Data);
            }
        };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            try
            {
                await StopAsync();
            }
            catch (AssertFailedException)
            {
            }
        }
        if (IsMounted(MountPath))
        {
            _ = Umount2(MountPath, 2);
        }
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public static bool IsMounted(string path)
        => File.ReadLines("/proc/self/mounts").Any(l => l.Split(' ') is { Length: > 2 } f && f[1] == path);

    /// <summary>Every file, directory and symlink under <paramref name="root"/>: relative path to content hash, "dir" or "-> target".</summary>
    public static SortedDictionary<string, string> Snapshot(string root, Func<string, bool>? skip = null)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            foreach (string entry in Directory.EnumerateFileSystemEntries(dir))
            {
                string rel = Path.GetRelativePath(root, entry);
                if (skip?.Invoke(rel) == true)
                {
                    continue;
                }
                var info = new FileInfo(entry);
                if (info.LinkTarget is { } target)
                {
                    result[rel] = "-> " + target;
                }
                else if (Directory.Exists(entry))
                {
                    result[rel] = "dir";
                    pending.Push(entry);
                }
                else
                {
                    using FileStream s = File.OpenRead(entry);
                    result[rel] = $"{s.Length}:{Convert.ToHexString(SHA256.HashData(s))}";
                }
            }
        }
        return result;
    }

    public static void AssertSameTree(SortedDictionary<string, string> expected, SortedDictionary<string, string> actual, string what)
    {
        var missing = expected.Keys.Except(actual.Keys).Take(5).ToList();
        var extra = actual.Keys.Except(expected.Keys).Take(5).ToList();
        var differ = expected.Where(kv => actual.TryGetValue(kv.Key, out string? v) && v != kv.Value).Select(kv => kv.Key).Take(5).ToList();
        if (missing.Count + extra.Count + differ.Count > 0)
        {
            Assert.Fail($"{what}: missing [{string.Join(", ", missing)}], extra [{string.Join(", ", extra)}], different [{string.Join(", ", differ)}]");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Umount2(string target, int flags);
}
