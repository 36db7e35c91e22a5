namespace CloudMirrorFs.Tests;

/// <summary>A fresh folder per test, removed when disposed.</summary>
public sealed class TempDir : IDisposable
{
    /// <param name="label">Begins the folder's name.</param>
    /// <param name="under">Where the folder goes: the system's temp folder's cmfs-test by default.</param>
    public TempDir(string? label = null, string? under = null)
    {
        Path = System.IO.Path.Combine(under ?? System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cmfs-test"), $"{label ?? "t"}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string name)
    {
        var p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
