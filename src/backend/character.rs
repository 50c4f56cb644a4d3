//! The Character service over the character and session stores.
//!
//! The gateway passes the user id it learned from the auth service; it is
//! trusted. `Delete` is immediate (remaining 0); cancelling a deletion of an
//! existing character is a no-op answered OK. `Select` needs the character
//! to belong to the user (else NOT_FOUND) and the session to belong to the
//! user and be past server select (else FAILED); it moves the session to
//! stage MAP with that character.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::characters::{Character, CreateError, NewCharacter};
use super::{database_failed, Shared};
use crate::pb::character::{self as pb, character_server::Character as CharacterRpc};

/// The Character service.
pub(crate) struct CharacterService {
    /// Stores shared with the other services.
    pub(crate) shared: Arc<Shared>,
}

fn summary(c: &Character) -> pb::CharacterSummary {
    pb::CharacterSummary {
        char_id: c.char_id,
        name: c.name.clone(),
        race: c.race.into(),
        level: c.level.into(),
        job: c.job.into(),
        remain_secs_until_delete: 0,
        face: c.face.into(),
        hair: c.hair.into(),
        equipped_items: c.items.to_vec(),
    }
}

#[tonic::async_trait]
impl CharacterRpc for CharacterService {
    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListReply>, Status> {
        let user_id = request.into_inner().user_id;
        let characters = self
            .shared
            .store
            .characters(user_id)
            .await
            .map_err(|e| database_failed("character list", e))?
            .iter()
            .map(summary)
            .collect();
        Ok(Response::new(pb::ListReply { characters }))
    }

    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateReply>, Status> {
        let req = request.into_inner();
        let new = NewCharacter {
            name: req.name,
            race: req.race,
            stone: req.stone,
            hair: req.hair,
            face: req.face,
            zone: req.zone,
        };
        let created = self
            .shared
            .store
            .create_character(req.user_id, &new)
            .await
            .map_err(|e| database_failed("character create", e))?;
        let (result, char_id) = match created {
            Ok(id) => {
                log::debug!(
                    "user {} created character {:?} ({id})",
                    req.user_id,
                    new.name
                );
                (pb::CreateResult::Ok, id)
            }
            Err(CreateError::NameTaken) => (pb::CreateResult::NameTaken, 0),
            Err(CreateError::InvalidValue) => {
                log::debug!(
                    "user {}: character {:?} refused (a value or the name, docs/protocol.md §9 D16)",
                    req.user_id,
                    new.name
                );
                (pb::CreateResult::InvalidValue, 0)
            }
            Err(CreateError::TooManyChars) => (pb::CreateResult::TooManyChars, 0),
        };
        Ok(Response::new(pb::CreateReply {
            result: result.into(),
            char_id,
        }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteReply>, Status> {
        let req = request.into_inner();
        let store = &self.shared.store;
        let outcome = if req.delete {
            store.delete_character(req.user_id, req.char_id).await
        } else {
            let found = store.character(req.user_id, req.char_id).await;
            found.map(|c| c.map(|c| c.name))
        }
        .map_err(|e| database_failed("character delete", e))?;
        let reply = match outcome {
            Ok(name) => {
                if req.delete {
                    log::debug!("user {} deleted character {name:?}", req.user_id);
                }
                pb::DeleteReply {
                    result: pb::DeleteResult::Ok.into(),
                    remaining_secs: 0,
                    name,
                }
            }
            Err(_) => pb::DeleteReply {
                result: pb::DeleteResult::NotFound.into(),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn select(
        &self,
        request: Request<pb::SelectRequest>,
    ) -> Result<Response<pb::SelectReply>, Status> {
        let req = request.into_inner();
        let failed = |e| database_failed("character select", e);
        let owned = self
            .shared
            .store
            .character(req.user_id, req.char_id)
            .await
            .map_err(failed)?
            .is_ok();
        let result = if !owned {
            pb::SelectResult::NotFound
        } else {
            let selected = self
                .shared
                .sessions
                .select_char(req.session_id, req.user_id, req.char_id)
                .await
                .map_err(failed)?;
            match selected {
                Ok(()) => pb::SelectResult::Ok,
                Err(_) => pb::SelectResult::Failed,
            }
        };
        Ok(Response::new(pb::SelectReply {
            result: result.into(),
        }))
    }
}
