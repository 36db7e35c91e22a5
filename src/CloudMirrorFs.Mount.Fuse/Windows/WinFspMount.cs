using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using CloudMirrorFs.Mount.FileSystem;

namespace CloudMirrorFs.Mount.Windows;

/// <summary>
/// A WinFsp FUSE 3 file system. WinFsp mounts inside its loop (fsp_fuse3_loop_mt creates the volume, sets the mount
/// point and starts its dispatcher threads, then waits), so <see cref="Mount"/> runs that loop on a thread of its own
/// and returns once the drive answers, or throws <see cref="MountException"/> if WinFsp gave up; <see cref="Run"/>
/// waits for the loop to end. Requests are served by WinFsp's dispatcher threads, not by the caller of Run.
/// </summary>
[SupportedOSPlatform("windows")]
internal sealed unsafe class WinFspMount : IFuseMount
{
    private static readonly TimeSpan MountTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);

    private readonly WinFspLibrary _library;
    private readonly bool _driveLetter;
    private readonly List<nint> _strings = [];
    private readonly ManualResetEventSlim _loopEnded = new();
    private Fuse3Operations* _ops;
    private WinFspArgs* _args;
    private nint _fuse;
    private Thread? _loop;
    private int _loopResult;
    private int _stopping;
    private bool _mounted;
    private bool _disposed;

    private WinFspMount(WinFspLibrary library, string mountPoint, bool driveLetter)
    {
        _library = library;
        MountPoint = mountPoint;
        _driveLetter = driveLetter;
    }

    /// <summary>The drive letter ("X:") or the folder.</summary>
    public string MountPoint { get; }

    /// <summary>
    /// Mounts <paramref name="fs"/> at a drive letter ("X:", shown as the network drive \\cmfs\VolumeName) or at a
    /// folder (which must not exist yet: WinFsp creates it, and removes it at unmount; an empty one is removed first).
    /// </summary>
    public static IFuseMount Mount(MirrorFileSystem fs, string mountPoint, FuseMountOptions options)
    {
        ArgumentNullException.ThrowIfNull(fs);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(mountPoint);
        WinFspLibrary library = WinFspLibrary.Load();
        string point = PrepareMountPoint(mountPoint, out bool driveLetter);
        var mount = new WinFspMount(library, point, driveLetter);
        try
        {
            mount.Start(fs, options);
            return mount;
        }
        catch
        {
            mount.Dispose();
            throw;
        }
    }

    /// <summary>
    /// "X:" (or "X:\") is a drive letter; anything else is a folder, made absolute. The folder must not exist (WinFsp
    /// creates it as the mount point); an empty one is removed, its parent created if absent, a non-empty one refused.
    /// </summary>
    internal static string PrepareMountPoint(string mountPoint, out bool driveLetter)
    {
        string m = mountPoint.Trim();
        if (m.Length is 2 or 3 && char.IsAsciiLetter(m[0]) && m[1] == ':' && (m.Length == 2 || m[2] is '\\' or '/'))
        {
            driveLetter = true;
            string letter = char.ToUpperInvariant(m[0]) + ":";
            if (Directory.Exists(letter + "\\"))
            {
                throw new MountException($"{letter} is already in use (a disk, a mapped network drive or another mount); set mount.path to a free drive letter");
            }
            return letter;
        }
        driveLetter = false;
        string folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(m));
        if (File.Exists(folder))
        {
            throw new MountException($"{folder}: the mount point is a file; set mount.path to a folder that does not exist yet (WinFsp creates it)");
        }
        if (Directory.Exists(folder))
        {
            try
            {
                if (Directory.EnumerateFileSystemEntries(folder).Any())
                {
                    throw new MountException($"{folder} is not empty: WinFsp mounts on a folder that does not exist yet (it creates it); choose another mount.path or empty and remove the folder");
                }
                Directory.Delete(folder);
            }
            catch (IOException e)
            {
                throw new MountException($"{folder} is still a mount point (another file system is mounted there, or a dead one left it); unmount it or remove it ('rmdir {folder}'), then mount again", e);
            }
        }
        string? parent = Path.GetDirectoryName(folder);
        if (parent is not null)
        {
            Directory.CreateDirectory(parent);
        }
        return folder;
    }

    private void Start(MirrorFileSystem fs, FuseMountOptions options)
    {
        WinFspOperations.Bind(fs);
        string[] argv = WinFspCommandLine.Arguments(options, _driveLetter);
        _args = (WinFspArgs*)NativeMemory.AllocZeroed((nuint)sizeof(WinFspArgs));
        _args->Argc = argv.Length;
        _args->Argv = (byte**)NativeMemory.AllocZeroed((nuint)(sizeof(nint) * (argv.Length + 1)));
        for (int i = 0; i < argv.Length; i++)
        {
            _args->Argv[i] = (byte*)Utf8(argv[i]);
        }
        _ops = (Fuse3Operations*)NativeMemory.AllocZeroed((nuint)sizeof(Fuse3Operations));
        WinFspOperations.Fill(_ops);

        // fsp_fuse3_new copies the arguments and the table; fsp_fuse3_mount copies the mount point.
        _fuse = _library.New(_library.Env, _args, _ops, (nuint)sizeof(Fuse3Operations), 0);
        if (_fuse == 0)
        {
            throw new MountException($"{MountPoint}: WinFsp refused the mount options ({argv[2]}); see the messages above");
        }
        if (_library.MountFs(_library.Env, _fuse, (byte*)Utf8(MountPoint)) != 0)
        {
            throw new MountException($"{MountPoint}: WinFsp cannot mount there: the drive letter or folder is in use or invalid, or the WinFsp driver is not running ('sc query WinFsp'; reinstall from {WinFspLibrary.DownloadUrl}); see the messages above");
        }
        _mounted = true;
        _loop = new Thread(Loop) { IsBackground = true, Name = "cmfs-winfsp" };
        _loop.Start();
        WaitUntilMounted();
        if (Volatile.Read(ref _stopping) == 1)
        {
            _library.Exit(_library.Env, _fuse); // Stop came while mounting, before fsp_fuse3_exit could be called
        }
    }

    /// <summary>The loop: returns when stopped (0) or when WinFsp could not create or mount the volume (non-zero).</summary>
    private void Loop()
    {
        try
        {
            _loopResult = _library.LoopMt(_library.Env, _fuse, 0);
        }
        finally
        {
            _loopEnded.Set();
        }
    }

    /// <summary>Waits until the mount point answers (the dispatcher is running) or the loop has given up.</summary>
    private void WaitUntilMounted()
    {
        string root = _driveLetter ? MountPoint + "\\" : MountPoint;
        DateTime deadline = DateTime.UtcNow + MountTimeout;
        while (!_loopEnded.Wait(TimeSpan.FromMilliseconds(50)))
        {
            if (Directory.Exists(root))
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new MountException($"{MountPoint}: the drive did not appear within {MountTimeout.TotalSeconds:0} s of WinFsp's start; see the Windows event log (source WinFsp)");
            }
        }
        throw new MountException($"{MountPoint}: WinFsp could not start the file system (loop result {_loopResult}); see the messages above or the Windows event log (source WinFsp)");
    }

    /// <inheritdoc />
    public int Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _loopEnded.Wait();
        return Volatile.Read(ref _stopping) == 1 ? 0 : _loopResult;
    }

    /// <inheritdoc />
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 1 || !_mounted)
        {
            return;
        }
        _library.Exit(_library.Env, _fuse); // sets the loop's event: it stops the dispatcher and unmounts
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        Stop();
        if (_loop is not null && !_loopEnded.Wait(StopTimeout))
        {
            // A request is stuck in the file system: WinFsp still uses the structures, so they stay (the process
            // is about to end anyway). Freeing them now would crash the dispatcher threads.
            return;
        }
        _disposed = true;
        if (_fuse != 0)
        {
            if (_mounted)
            {
                _library.Unmount(_library.Env, _fuse);
                _mounted = false;
            }
            _library.Destroy(_library.Env, _fuse);
            _fuse = 0;
        }
        if (_ops != null)
        {
            NativeMemory.Free(_ops);
            _ops = null;
        }
        if (_args != null)
        {
            NativeMemory.Free(_args->Argv);
            NativeMemory.Free(_args);
            _args = null;
        }
        foreach (nint s in _strings)
        {
            Marshal.FreeCoTaskMem(s);
        }
        _strings.Clear();
        _loopEnded.Dispose();
    }

    private nint Utf8(string s)
    {
        nint p = Marshal.StringToCoTaskMemUTF8(s);
        _strings.Add(p);
        return p;
    }
}
