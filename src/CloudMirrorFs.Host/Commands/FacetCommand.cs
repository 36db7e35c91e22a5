using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Host.Control;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Host.Commands;

/// <summary>
/// <c>cmfs facet replace --name NAME --path PATH</c>: the seed's recovery column. The facet's folder in the config
/// file is changed to the new disk (the file is rewritten atomically, everything else in it kept), then a running
/// mount swaps the facet and rebuilds it with a full, pipelined resync while the drive stays in use, and this
/// command follows the rebuild; with no mount running, the next mount (or <c>cmfs resync</c>) rebuilds it.
/// </summary>
internal static class FacetCommand
{
    public static Command Create(CommandContext context, Option<string?> config)
    {
        var name = new Option<string>("--name") { Description = "The facet to move to a new disk", Required = true };
        var path = new Option<string>("--path") { Description = "The new disk's folder (created if absent; must be empty or hold this facet)", Required = true };
        var replace = new Command("replace", "Point a local facet at a new disk and rebuild it there") { name, path };
        replace.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            if (volume.IsEmbeddedDefault)
            {
                await context.Error.WriteLineAsync("cmfs: the embedded default volume has no config file to change; write a cmfs.json (docs/configuration.md) to manage facets");
                return CmfsCli.UsageError;
            }
            string facet = parse.GetValue(name)!;
            if (volume.Options.Facets.All(f => f.Name != facet))
            {
                await context.Error.WriteLineAsync($"cmfs: --name {facet}: no such facet (the volume has {string.Join(", ", volume.Options.Facets.Select(f => f.Name))})");
                return CmfsCli.UsageError;
            }
            string newPath = Path.GetFullPath(parse.GetValue(path)!, context.WorkingDirectory);
            string text = await File.ReadAllTextAsync(volume.Source, cancellationToken);
            JsonNode root = JsonNode.Parse(text) ?? throw new ConfigException("(file)", "is empty");
            JsonObject entry = root["facets"]!.AsArray().OfType<JsonObject>().Single(f => (string?)f["name"] == facet);
            entry["path"] = newPath;
            string updated = root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
            // Validated as a whole before it is written: overlaps with other facets, the state folder or the mount are refused.
            VolumeConfigLoader.Parse(updated, Path.GetDirectoryName(volume.Source)!, volume.Source, needMount: false);
            AtomicFile.Write(volume.Source, System.Text.Encoding.UTF8.GetBytes(updated + "\n"));
            await context.Error.WriteLineAsync($"{volume.Source}: facet '{facet}' now at {newPath}");

            ControlResponse? live = await ControlClient.TrySendAsync(volume.Options.StateDir,
                new ControlRequest { Verb = "facet-replace", Facet = facet, ConfigPath = volume.Source }, cancellationToken);
            if (live is null)
            {
                await context.Out.WriteLineAsync($"no mount is running: the next mount (or 'cmfs resync --facet {facet}') rebuilds '{facet}' at {newPath} with a full resync");
                return CmfsCli.Ok;
            }
            if (live.ExitCode != CmfsCli.Ok)
            {
                await context.Error.WriteLineAsync($"cmfs: {live.Error}");
                return live.ExitCode;
            }
            await context.Error.WriteLineAsync($"the running mount swapped '{facet}' to the new disk; rebuilding it while the drive stays in use");
            return await ResyncCommand.FollowAsync(context, facet, volume.Options.BlockSize, DateTime.MaxValue, async ct =>
                (await ControlClient.TrySendAsync(volume.Options.StateDir, new ControlRequest { Verb = "status" }, ct))?.Status
                    ?? throw new MirrorException(MirrorError.Unavailable, "the running mount went away during the rebuild"), cancellationToken);
        });
        return new Command("facet", "Manage the volume's facets") { replace };
    }
}
