using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Host.Commands;

/// <summary>What every verb needs: output writers, the working folder, and the one composition root.</summary>
internal sealed class CommandContext(TextWriter stdout, TextWriter stderr, string workingDirectory)
{
    /// <summary>
    /// What to say when <paramref name="options"/>'s state folder holds no volume. When the volume's drive is mounted
    /// all the same, a running <c>cmfs mount</c> lost its state folder (deleted under it): "run cmfs init" beside it
    /// would be wrong, so the answer says to stop it first.
    /// </summary>
    public static string NotInitialised(CloudMirrorFs.Options.VolumeOptions options)
        => options.MountPath is { } drive && CloudMirrorFs.Mount.MountPoints.IsMounted(Path.GetFullPath(drive))
            ? $"cmfs: volume at {options.StateDir} has no state, yet its drive {drive} is mounted: a running 'cmfs mount' lost its state folder; stop it (SIGTERM, or 'fusermount3 -u {drive}'), then run 'cmfs mount' again: the local facet is taken as the truth and the remotes are resynchronised from it"
            : $"cmfs: volume at {options.StateDir} is not initialised; run 'cmfs init' (or 'cmfs mount')";

    /// <summary>
    /// True once the volume's state exists (<c>stateDir/facets.json</c>). A state folder that cannot be read is an
    /// error naming it, never "not initialised" (which would send the user to re-create a volume that exists).
    /// </summary>
    public static bool IsInitialised(string stateDir)
    {
        string path = Path.Combine(stateDir, "facets.json");
        try
        {
            return CloudMirrorFs.Storage.PathProbe.Attributes(path) is not null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw MirrorException.From(e, $"state folder {stateDir}: cannot read {path}");
        }
    }

    public TextWriter Out { get; } = stdout;

    public TextWriter Error { get; } = stderr;

    public string WorkingDirectory { get; } = workingDirectory;

    /// <summary>Resolves the volume (config file or embedded default), validated, with nothing created yet.</summary>
    public ResolvedVolume Resolve(string? configPath, bool needMount) => VolumeConfigLoader.Resolve(configPath, WorkingDirectory, needMount);

    /// <summary>
    /// The composition root, on Microsoft.Extensions.Hosting: logging to stderr (warnings and up for one-shot verbs,
    /// information for the long-running ones).
    /// </summary>
    public IHost BuildHost(LogLevel minimum)
    {
        HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(minimum);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        return builder.Build();
    }

    /// <summary>Opens the volume for a one-shot verb: no replicators (they belong to a running instance).</summary>
    public async Task<MirrorVolume> OpenVolumeAsync(ResolvedVolume volume, IHost host, CancellationToken cancellationToken)
        => await MirrorVolume.OpenAsync(volume.Options, loggerFactory: host.Services.GetRequiredService<ILoggerFactory>(),
            runtime: new VolumeRuntimeOptions { Replicate = false }, cancellationToken: cancellationToken);

    /// <summary>Prints where the embedded default keeps everything (the first time it is created).</summary>
    public async Task AnnounceEmbeddedDefaultAsync(ResolvedVolume volume)
    {
        await Error.WriteLineAsync("cmfs: no --config and no ./cmfs.json: using the embedded default volume");
        await Error.WriteLineAsync($"  state:        {volume.Options.StateDir}");
        foreach (var f in volume.Options.Facets)
        {
            await Error.WriteLineAsync($"  facet {f.Name,-7} {f.Role.ToString().ToLowerInvariant()} {f.Kind} at {f.Path}");
        }
        await Error.WriteLineAsync($"  mount point:  {volume.Options.MountPath}");
    }
}
