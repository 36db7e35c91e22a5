using System.Diagnostics;

namespace CloudMirrorFs.Host.Tests;

/// <summary>Runs cmfs in-process or as a real child process, in a temp folder of its own.</summary>
public sealed class Cli : IDisposable
{
    public Cli()
    {
        Dir = Path.Combine(Path.GetTempPath(), "cmfs-cli", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
    }

    public string Dir { get; }

    public string Write(string name, string text)
    {
        string p = Path.Combine(Dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    public async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await CmfsCli.RunAsync(args, o, e, Dir);
        return (code, o.ToString(), e.ToString());
    }

    public async Task<(int Code, string Out, string Err)> RunProcessAsync(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "cmfs.dll");
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = Dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync();
        Task<string> e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await o, await e);
    }

    /// <summary>Every path under the folder, to check that nothing was created.</summary>
    public string[] Listing() => [.. Directory.EnumerateFileSystemEntries(Dir, "*", SearchOption.AllDirectories).Order()];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
