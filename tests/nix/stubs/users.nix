# users.users / users.groups with the checks NixOS makes at evaluation time
# (imitating nixos/modules/config/users-groups.nix; assertion wording kept so messages match).
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.users;

  userModule =
    { name, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = name;
          description = "The account name; defaults to the attribute name.";
        };
        isSystemUser = mkOption {
          type = types.bool;
          default = false;
          description = "A system account (low uid, no login).";
        };
        isNormalUser = mkOption {
          type = types.bool;
          default = false;
          description = "A login account.";
        };
        group = mkOption {
          type = types.str;
          default = "";
          description = "Primary group; NixOS requires it to be set.";
        };
        extraGroups = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Supplementary groups.";
        };
        description = mkOption {
          type = types.passwdEntry types.str;
          default = "";
          description = "GECOS field.";
        };
        home = mkOption {
          type = types.passwdEntry types.path;
          default = "/var/empty";
          description = "Home directory.";
        };
        createHome = mkOption {
          type = types.bool;
          default = false;
          description = "Create the home directory on activation.";
        };
        homeMode = mkOption {
          type = types.strMatching "[0-7]{1,5}";
          default = "700";
          description = "Mode of a created home directory.";
        };
        uid = mkOption {
          type = types.nullOr types.int;
          default = null;
          description = "Fixed uid; null lets NixOS allocate one.";
        };
        shell = mkOption {
          type = types.nullOr (types.either types.shellPackage (types.passwdEntry types.path));
          default = null;
          description = "Login shell.";
        };
      };
    };

  groupModule =
    { name, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = name;
          description = "The group name; defaults to the attribute name.";
        };
        gid = mkOption {
          type = types.nullOr types.int;
          default = null;
          description = "Fixed gid; null lets NixOS allocate one.";
        };
        members = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Users added to the group.";
        };
      };
    };

  users = lib.attrValues cfg.users;
in
{
  options.users = {
    users = mkOption {
      type = types.attrsOf (types.submodule userModule);
      default = { };
      description = "User accounts.";
    };
    groups = mkOption {
      type = types.attrsOf (types.submodule groupModule);
      default = { };
      description = "Groups.";
    };
  };

  config = {
    assertions = lib.concatMap (u: [
      {
        # A uid below 1000 makes a user a system user in NixOS's eyes, as here.
        assertion =
          let
            system = u.isSystemUser || (u.uid != null && u.uid < 1000 && !u.isNormalUser);
          in
          system != u.isNormalUser;
        message = "Exactly one of users.users.${u.name}.isSystemUser and users.users.${u.name}.isNormalUser must be set.";
      }
      {
        assertion = u.group != "";
        message = ''
          users.users.${u.name}.group is unset. This used to default to
          nogroup, but this is unsafe. Give the user a group of its own, e.g.
          users.users.${u.name}.group = "${u.name}"; users.groups.${u.name} = {};'';
      }
      # As NixOS (users-groups.nix): a primary group no users.groups entry declares is refused at
      # evaluation. extraGroups are not checked: NixOS declares wheel, keys, ... itself and these
      # stubs do not.
      {
        assertion = u.group == "" || cfg.groups ? ${u.group};
        message = "users.users.${u.name}.group is \"${u.group}\", which no users.groups entry declares.";
      }
    ]) users;

    system.build.passwd = lib.concatMapStrings (
      u: "${u.name}:x:${if u.uid == null then "" else toString u.uid}:${u.group}:${u.description}:${u.home}:\n"
    ) users;
  };
}
