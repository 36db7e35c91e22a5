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
            if (await RefuseEmbeddedAsync(context, volume))
            {
                return CmfsCli.UsageError;
            }
            string facet = parse.GetValue(name)!;
            if (volume.Options.Facets.All(f => f.Name != facet))
            {
                await context.Error.WriteLineAsync($"cmfs: --name {facet}: no such facet (the volume has {string.Join(", ", volume.Options.Facets.Select(f => f.Name))})");
                return CmfsCli.UsageError;
            }
            string newPath = Path.GetFullPath(parse.GetValue(path)!, context.WorkingDirectory);
            await EditAsync(volume, facets => FacetEntry(facets, facet)["path"] = newPath, cancellationToken);
            await context.Error.WriteLineAsync($"{volume.Source}: facet '{facet}' now at {newPath}");

            ControlResponse? live = await ControlClient.TrySendAsync(volume.Options.StateDir,
                new ControlRequest { Verb = "facet-replace", Facet = facet, ConfigPath = volume.Source }, cancellationToken, context.Error);
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
        return new Command("facet", "Manage the volume's facets") { replace, CreateAdd(context, config), CreateRemove(context, config) };
    }

    /// <summary><c>cmfs facet add --name N --role local|remote --kind K --path P</c>: a new facet, rebuilt by a full resync at the next mount.</summary>
    private static Command CreateAdd(CommandContext context, Option<string?> config)
    {
        var name = new Option<string>("--name") { Description = "The new facet's name", Required = true };
        var role = new Option<string>("--role") { Description = "local or remote", Required = true };
        var kind = new Option<string>("--kind") { Description = "directory, folder, s3 or azure (s3 and azure: add their keys to the config file)", Required = true };
        var path = new Option<string?>("--path") { Description = "The folder (directory and folder kinds)" };
        var add = new Command("add", "Add a facet; the next mount rebuilds it with a full resync") { name, role, kind, path };
        add.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            if (await RefuseEmbeddedAsync(context, volume))
            {
                return CmfsCli.UsageError;
            }
            string facet = parse.GetValue(name)!;
            var entry = new JsonObject { ["name"] = facet, ["role"] = parse.GetValue(role), ["kind"] = parse.GetValue(kind) };
            if (parse.GetValue(path) is { } p)
            {
                entry["path"] = Path.GetFullPath(p, context.WorkingDirectory);
            }
            await EditAsync(volume, facets => facets.Add(entry), cancellationToken);
            await context.Out.WriteLineAsync($"{volume.Source}: facet '{facet}' added; the next mount brings it in with a full resync{await RunningHintAsync(volume, cancellationToken)}");
            return CmfsCli.Ok;
        });
        return add;
    }

    /// <summary><c>cmfs facet remove --name N</c>: the facet leaves the volume (its folder or bucket is left as it is).</summary>
    private static Command CreateRemove(CommandContext context, Option<string?> config)
    {
        var name = new Option<string>("--name") { Description = "The facet to remove", Required = true };
        var remove = new Command("remove", "Remove a facet from the volume (its data is left where it is)") { name };
        remove.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            if (await RefuseEmbeddedAsync(context, volume))
            {
                return CmfsCli.UsageError;
            }
            string facet = parse.GetValue(name)!;
            await EditAsync(volume, facets => facets.Remove(FacetEntry(facets, facet)), cancellationToken);
            await context.Out.WriteLineAsync($"{volume.Source}: facet '{facet}' removed; its data is left in place{await RunningHintAsync(volume, cancellationToken)}");
            return CmfsCli.Ok;
        });
        return remove;
    }

    private static async Task<bool> RefuseEmbeddedAsync(CommandContext context, ResolvedVolume volume)
    {
        if (!volume.IsEmbeddedDefault)
        {
            return false;
        }
        await context.Error.WriteLineAsync("cmfs: the embedded default volume has no config file to change; write a cmfs.json (docs/configuration.md) to manage facets");
        return true;
    }

    private static async Task<string> RunningHintAsync(ResolvedVolume volume, CancellationToken cancellationToken)
        => await ControlClient.TrySendAsync(volume.Options.StateDir, new ControlRequest { Verb = "status" }, cancellationToken) is null
            ? ""
            : " (a mount is running: it takes effect when the drive is mounted again)";

    private static JsonObject FacetEntry(JsonArray facets, string name)
        => facets.OfType<JsonObject>().FirstOrDefault(f => (string?)f["name"] == name)
            ?? throw new ConfigException("facets", $"has no facet named '{name}'");

    /// <summary>
    /// Changes the config file's facet list, validates the whole result (the same checks as at start-up: names, kinds,
    /// overlapping folders, at least one local facet), and only then replaces the file atomically.
    /// </summary>
    private static async Task EditAsync(ResolvedVolume volume, Action<JsonArray> change, CancellationToken cancellationToken)
    {
        string text = await File.ReadAllTextAsync(volume.Source, cancellationToken);
        JsonNode root = JsonNode.Parse(text) ?? throw new ConfigException("(file)", "is empty");
        change(root["facets"]?.AsArray() ?? throw new ConfigException("facets", "is missing"));
        string updated = root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        VolumeConfigLoader.Parse(updated, Path.GetDirectoryName(volume.Source)!, volume.Source, needMount: false);
        AtomicFile.Write(volume.Source, System.Text.Encoding.UTF8.GetBytes(updated + "\n"));
    }
}
