namespace CloudMirrorFs.Mount;

/// <summary>A mounted drive: serve requests until stopped, then unmount.</summary>
public interface IFuseMount : IDisposable
{
    /// <summary>Where the drive is mounted (a folder, a drive letter, or a UNC prefix).</summary>
    string MountPoint { get; }

    /// <summary>Serves requests on the calling thread until <see cref="Stop"/> (or an external unmount); returns 0 on a clean stop.</summary>
    int Run();

    /// <summary>Asks the loop to end (any thread, idempotent); <see cref="IDisposable.Dispose"/> then unmounts.</summary>
    void Stop();
}
