using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Host.Control;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Host.Commands;

/// <summary><c>cmfs status [--json]</c>: per facet state, backlog, oldest unreplicated age, dirty locations, resync progress.</summary>
internal static class StatusCommand
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static Command Create(CommandContext context, Option<string?> config)
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object (the stable, documented form)" };
        var command = new Command("status", "Show each facet's state, backlog and resync progress") { json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            VolumeStatus status;
            // The running instance first: it answers on its abstract name even when the state folder's disk is dead.
            ControlResponse? live = await ControlClient.TrySendAsync(volume.Options.StateDir, new ControlRequest { Verb = "status" }, cancellationToken, context.Error);
            if (live is null && !CommandContext.IsInitialised(volume.Options.StateDir))
            {
                await context.Error.WriteLineAsync(CommandContext.NotInitialised(volume.Options));
                return CmfsCli.Failed;
            }
            if (live is not null)
            {
                if (live.Status is null)
                {
                    await context.Error.WriteLineAsync($"cmfs: {live.Error ?? "the running instance sent no status"}");
                    return live.ExitCode == CmfsCli.Ok ? CmfsCli.Failed : live.ExitCode;
                }
                status = live.Status;
            }
            else
            {
                using IHost host = context.BuildHost(LogLevel.Error);
                await using MirrorVolume v = await context.OpenVolumeAsync(volume, host, cancellationToken);
                status = v.GetStatus();
            }
            if (parse.GetValue(json))
            {
                await context.Out.WriteLineAsync(JsonSerializer.Serialize(ToDocument(status, volume.Source), Json));
                return CmfsCli.Ok;
            }
            await context.Out.WriteLineAsync($"volume {status.Name} ({volume.Source}), state {status.StateDir}, block size {Units.FormatSize(status.BlockSize)}");
            await context.Out.WriteLineAsync($"queue: {Units.FormatSize(status.QueueMemoryBytes)} in memory (limit {Units.FormatSize(status.QueueMemoryLimit)}), {Units.FormatSize(status.QueueDiskBytes)} on disk (limit {Units.FormatSize(status.QueueDiskLimit)})");
            await context.Out.WriteLineAsync($"{"FACET",-12} {"ROLE",-7} {"KIND",-10} {"STATE",-18} {"QUEUED",8} {"BYTES",10} {"OLDEST",8} {"DIRTY",8}");
            foreach (FacetStatus f in status.Facets)
            {
                string oldest = f.OldestUnreplicatedAge is { } age ? $"{age.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)}s" : "-";
                string dirty = f.DirtyLocations < 0 ? "all" : f.DirtyLocations.ToString(CultureInfo.InvariantCulture);
                await context.Out.WriteLineAsync($"{f.Name,-12} {f.Role.ToString().ToLowerInvariant(),-7} {f.Kind,-10} {f.State,-18} {f.QueuedEntries,8} {Units.FormatSize(f.QueuedBytes),10} {oldest,8} {dirty,8}");
                if (f.Reason is not null)
                {
                    await context.Out.WriteLineAsync($"{"",-12} {f.Reason}");
                }
            }
            return CmfsCli.Ok;
        });
        return command;
    }

    /// <summary>The documented JSON form (docs/configuration.md, "cmfs status --json").</summary>
    internal static object ToDocument(VolumeStatus s, string source) => new
    {
        volume = s.Name,
        source,
        stateDir = s.StateDir,
        blockSize = s.BlockSize,
        queue = new { memoryBytes = s.QueueMemoryBytes, diskBytes = s.QueueDiskBytes, memoryLimit = s.QueueMemoryLimit, diskLimit = s.QueueDiskLimit },
        facets = s.Facets.Select(f => new
        {
            name = f.Name,
            kind = f.Kind,
            role = f.Role,
            state = f.State,
            queuedEntries = f.QueuedEntries,
            queuedBytes = f.QueuedBytes,
            oldestUnreplicatedSeconds = f.OldestUnreplicatedAge?.TotalSeconds,
            dirtyLocations = f.DirtyLocations,
            resyncProgress = f.ResyncProgress,
            held = f.Held,
            reason = f.Reason,
        }),
    };
}
