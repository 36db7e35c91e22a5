using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

/// <summary>
/// A volume in a temp folder with named local and remote facets (directory by default), each wrapped for fault
/// injection. Public so the cloud tests can rerun engine scenarios with S3 and Azure remotes.
/// </summary>
public sealed class VolumeFixture : IAsyncDisposable
{
    private readonly TempDir _dir = new("vol");

    public VolumeFixture(int locals = 1, int remotes = 0, int blockSize = 64 * 1024, QueueOptions? queue = null, OverflowPolicy overflow = OverflowPolicy.Unsync,
        TimeSpan? overflowTimeout = null, string remoteKind = "directory", Func<int, IReadOnlyDictionary<string, string>>? remoteSettings = null,
        TimeSpan? degradedTimeout = null, Func<int, string>? remotePath = null, bool caseInsensitiveNames = false)
    {
        var facets = new List<FacetOptions>();
        for (int i = 0; i < locals; i++)
        {
            facets.Add(new FacetOptions { Name = $"local{i}", Role = FacetRole.Local, Kind = "directory", Path = _dir.Sub($"local{i}") });
        }
        for (int i = 0; i < remotes; i++)
        {
            facets.Add(new FacetOptions
            {
                Name = $"remote{i}", Role = FacetRole.Remote, Kind = remoteKind, Path = remotePath?.Invoke(i) ?? _dir.Sub($"remote{i}"),
                Overflow = overflow, OverflowTimeout = overflowTimeout ?? TimeSpan.FromSeconds(30),
                Settings = remoteSettings?.Invoke(i) ?? new Dictionary<string, string>(),
            });
        }
        Options = new VolumeOptions
        {
            Name = "test",
            StateDir = Path.Combine(_dir.Path, "state"),
            BlockSize = blockSize,
            DegradedTimeout = degradedTimeout ?? VolumeOptions.DefaultDegradedTimeout,
            CaseInsensitiveNames = caseInsensitiveNames,
            Queue = queue ?? new QueueOptions { MemoryLimit = 64L << 20 }, // the tests' sizes were chosen against this limit, not the machine's default
            Facets = facets,
        };
    }

    public VolumeOptions Options { get; }

    public Dictionary<string, FaultInjectingFacet> Faults { get; } = [];

    public MirrorVolume Volume { get; private set; } = null!;

    public string FacetPath(string name) => Options.Facets.Single(f => f.Name == name).Path!;

    /// <summary>
    /// The tree a remote facet holds, as plain files: the folder itself for a directory facet, a restore of its
    /// committed image (from the store alone) for an object-store facet.
    /// </summary>
    public async Task<string> RemoteTreeAsync(string name)
    {
        FacetOptions o = Options.Facets.Single(f => f.Name == name);
        if (o.Kind == "directory")
        {
            return o.Path!;
        }
        string target = Path.Combine(_dir.Path, $"restored-{name}-{Guid.NewGuid():N}");
        await CloudMirrorFs.Objects.RemoteRestore.RestoreAsync(FacetFactory.CreateStore(o), target, null, null, default);
        return target;
    }

    /// <summary>Replicators start only when asked: Engine I tests inspect the queue undisturbed.</summary>
    public bool Replicate { get; set; }

    /// <summary>Wraps each facet before fault injection (a SimulatedLink for remotes, say).</summary>
    public Func<FacetOptions, IFacet, IFacet>? Wrap { get; set; }

    /// <summary>How long a replicator lets a trickle grow (the product's default when null).</summary>
    public TimeSpan? Linger { get; set; }

    /// <summary>How long a remote's bulk work stays at background priority (the product's default when null).</summary>
    public TimeSpan? BackgroundWhileWithin { get; set; }

    /// <summary>Where the volume logs; nowhere when null.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? Logs { get; set; }

    private CloudMirrorFs.Replication.ReplicationOptions Replication()
    {
        var defaults = new CloudMirrorFs.Replication.ReplicationOptions();
        return new CloudMirrorFs.Replication.ReplicationOptions
        {
            RetryDelay = TimeSpan.FromMilliseconds(10), MaxRetryDelay = TimeSpan.FromMilliseconds(200), Linger = Linger ?? defaults.Linger,
            BackgroundWhileWithin = BackgroundWhileWithin ?? defaults.BackgroundWhileWithin,
        };
    }

    public async Task<MirrorVolume> OpenAsync()
    {
        Volume = await MirrorVolume.OpenAsync(Options, o =>
        {
            IFacet inner = FacetFactory.Create(o, Options);
            var f = new FaultInjectingFacet(Wrap?.Invoke(o, inner) ?? inner);
            Faults[o.Name] = f;
            return f;
        }, Logs, runtime: new VolumeRuntimeOptions
        {
            Replicate = Replicate,
            Replication = Replication(),
        });
        return Volume;
    }

    public async Task<MirrorVolume> ReopenAsync()
    {
        await Volume.DisposeAsync();
        return await OpenAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (Volume is not null)
        {
            await Volume.DisposeAsync();
        }
        _dir.Dispose();
    }
}
